# The production image: gunicorn serves the app; the same image runs the worker and beat.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=config.settings.production
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# The admin's static files, collected once into the image (served by WhiteNoise).
RUN DJANGO_SETTINGS_MODULE=config.settings.base DJANGO_STATIC_ROOT=/app/staticfiles python manage.py collectstatic --noinput
RUN useradd --system --home /app tracker && mkdir -p /app/var /app/staticfiles && chown -R tracker /app/var /app/staticfiles
USER tracker
EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "30", "--access-logfile", "-"]
