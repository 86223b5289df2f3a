# The production image: gunicorn serves the app; the same image runs the worker and beat.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=config.settings.production \
    DJANGO_STATIC_ROOT=/app/staticfiles
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# The admin's static files, collected once into the image (served by WhiteNoise) by the
# production storage: hashed names, compressed copies and the manifest that production's
# {% static %} needs (without it every admin page is a 500). The key exists only for this step.
RUN DJANGO_SECRET_KEY=collectstatic-at-build-only-never-used-to-serve-0123456789 python manage.py collectstatic --noinput
RUN useradd --system --home /app tracker && mkdir -p /app/var/exports /app/staticfiles && chown -R tracker /app/var /app/staticfiles
USER tracker
EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "30", "--access-logfile", "-"]
