# One image for web and workers; the GPU worker builds with EXTRAS=gpu (vLLM, CUDA base recommended).
FROM python:3.11-slim
ARG EXTRAS=cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MI_VAR_DIR=/data STATIC_MANIFEST=1 STATIC_ROOT=/app/staticfiles
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY mi_platform mi_platform
COPY annotation annotation
COPY inference inference
COPY evaluation evaluation
COPY templates templates
COPY static static
COPY locale locale
COPY manage.py ./
RUN pip install --no-cache-dir ".[${EXTRAS}]"
RUN SECRET_KEY=build-only python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["gunicorn", "mi_platform.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
