from django.db import migrations

# The group whose members may check tickets in at the door (POST /checkins) without being
# staff: door staff get a scanner account, nothing more. Made by a migration rather than a
# command someone must remember: the release step (`release_migrate`) runs it on every
# deployment before the new code serves, on every database the service is pointed at, once.
# Idempotent (get_or_create), so a group an operator made by hand first is kept as it is.
# Members are added in the admin (Users -> Groups) or with `user.groups.add(...)`.
SCANNERS_GROUP = "scanners"  # core.selectors.SCANNERS_GROUP; a migration does not import app code


def create_scanners_group(apps, schema_editor) -> None:
    apps.get_model("auth", "Group").objects.get_or_create(name=SCANNERS_GROUP)


def remove_empty_scanners_group(apps, schema_editor) -> None:
    # Only an empty group: unapplying must not silently take the door away from its members.
    apps.get_model("auth", "Group").objects.filter(name=SCANNERS_GROUP, user__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0010_payments"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunPython(create_scanners_group, remove_empty_scanners_group),
    ]
