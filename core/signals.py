"""A password change revokes the user's refresh tokens, however the password is changed
(the admin's password form, `manage.py changepassword`, `set_password` and `save`).

Compared on save rather than hooked into one form: every path ends in saving the user. Not
caught: a queryset `update()` of the password column, which sends no signal (the password
fingerprint in every token still refuses the old tokens).
"""

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save, pre_save

from core.models import RefreshTokenFamily
from core.services.auth import user_tokens_revoke


def _note_password_change(sender, instance, raw=False, update_fields=None, **kwargs):
    if raw or instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    stored = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    instance._password_changed = stored is not None and stored != instance.password


def _revoke_tokens_after_password_change(sender, instance, raw=False, **kwargs):
    if raw or not getattr(instance, "_password_changed", False):
        return
    instance._password_changed = False
    user_tokens_revoke(user_id=instance.pk, reason=RefreshTokenFamily.RevokedReason.PASSWORD_CHANGED)


def connect() -> None:
    user_model = get_user_model()
    pre_save.connect(_note_password_change, sender=user_model, dispatch_uid="core.password_change.note")
    post_save.connect(
        _revoke_tokens_after_password_change, sender=user_model, dispatch_uid="core.password_change.revoke"
    )
