# One image for web and workers; the GPU workers build with EXTRAS=gpu (vLLM 0.32.0, torch 2.13.0).
# No CUDA toolkit is needed in the image (torch and vLLM bring the CUDA 13 runtime as pip packages);
# the host needs an NVIDIA driver that runs CUDA 13 (the 580 series or newer) and the NVIDIA
# Container Toolkit. `python manage.py gpu_preflight` checks all of it on the worker.
FROM python:3.11-slim
ARG EXTRAS=cpu
# Triton (vLLM's LoRA kernels, torch.compile) compiles a small C driver on first use and fails with
# "Failed to find C compiler" without one: the GPU image gets build-essential.
RUN if [ "$EXTRAS" = "gpu" ]; then \
      apt-get update && apt-get install -y --no-install-recommends build-essential \
      && rm -rf /var/lib/apt/lists/*; \
    fi
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
