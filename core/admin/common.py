"""What every catalogue admin shares: forms and saves that go through the services."""

from django import forms
from django.contrib import admin
from django.db import DatabaseError, transaction

from core import db_errors
from core.exceptions import DomainError

BUSY = "Another operation (a booking decision or a cancellation) holds this record right now: save again."


class ServiceForm(forms.ModelForm):
    """A model form that saves through a catalogue service, as its last validation step.

    The admin calls save_model only once the form is valid, and an error raised there is a
    500; run here, a service's refusal (a DomainError) becomes form errors and the page is
    shown again. The service's result becomes the form's instance, so save_model has nothing
    left to do. The admin wraps the request in a transaction: the write commits with it (and
    these admins have no inlines whose errors could follow a successful save)."""

    def create(self, data: dict):
        raise NotImplementedError

    def update(self, instance, changes: dict):
        raise NotImplementedError

    def clean(self):
        cleaned = super().clean()
        if self.errors or cleaned is None:
            return cleaned
        try:
            with transaction.atomic():
                if self.instance.pk is None:
                    saved = self.create(dict(cleaned))
                else:
                    fresh = type(self.instance).objects.get(pk=self.instance.pk)
                    saved = self.update(fresh, {name: cleaned[name] for name in self.changed_data if name in cleaned})
        except DomainError as error:
            self._add_domain_error(error)
        except DatabaseError as error:
            # A row held past the lock timeout (a decision, a cancellation): the savepoint
            # is rolled back and the operator may simply save again.
            if not db_errors.is_contention(error):
                raise
            self.add_error(None, BUSY)
        else:
            self.instance = saved
        return cleaned

    def _add_domain_error(self, error: DomainError) -> None:
        fields = {name: errors for name, errors in error.details.items() if name in self.fields}
        for name, errors in fields.items():
            self.add_error(name, errors)
        if not fields:
            self.add_error(None, error.message)


class ServiceAdmin(admin.ModelAdmin):
    """Saves happen in the form (ServiceForm.clean); nothing is left to write here."""

    def save_model(self, request, obj, form, change) -> None:
        pass
