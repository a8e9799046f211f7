"""Payment jobs: thin tasks over core.services.payments and the fake provider."""

from celery import shared_task
from django.conf import settings

from core.payments import fake
from core.services.payments import payment_refund_send, payments_reconcile


@shared_task(name="payments.reconcile", ignore_result=True)
def reconcile() -> int:
    """Settle payments and refunds left unsettled past PAYMENT_RECONCILE_AFTER_SECONDS."""
    return payments_reconcile(older_than_seconds=settings.PAYMENT_RECONCILE_AFTER_SECONDS)


@shared_task(name="payments.refund", ignore_result=True)
def refund(payment_ids: list[str]) -> None:
    """Send pending refunds (a cancelled show's); what fails here the reconciliation job retries."""
    for payment_id in payment_ids:
        payment_refund_send(payment_id=payment_id)


@shared_task(
    name=fake.WEBHOOK_TASK,
    ignore_result=True,
    bind=True,
    max_retries=20,
    # A delivery the service did not take (down, 503) is tried again, as a provider does.
    autoretry_for=(OSError,),
    retry_backoff=1,
    retry_backoff_max=30,
)
def fake_webhook(self, intent_id: str) -> None:
    """The fake provider's webhook: POST the decided charge to the service over HTTP."""
    if fake.webhook_deliver(intent_id=intent_id) is None:
        # Not decided yet (an early run): ask again at its moment.
        raise self.retry(countdown=max(0.2, settings.PAYMENT_FAKE_WEBHOOK_DELAY_SECONDS))
