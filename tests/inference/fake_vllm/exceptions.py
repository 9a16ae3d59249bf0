"""As ``vllm.exceptions`` in 0.32.0: errors are not ValueErrors."""


class VLLMError(Exception):
    pass


class VLLMClientError(VLLMError):
    pass


class VLLMServerError(VLLMError):
    pass


class VLLMValidationError(VLLMClientError):
    pass
