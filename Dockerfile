# One image for every Django-based process (web, worker, beat, flower, migrate).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN DJANGO_SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(50))') \
    TICKET_SIGNING_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(50))') \
    python manage.py collectstatic --noinput \
    && mkdir -p /app/var/metrics \
    && useradd --create-home --uid 1000 app \
    && chown -R app /app
USER app

EXPOSE 8000 5555
CMD ["gunicorn", "-c", "booking_api/config/gunicorn.conf.py"]
