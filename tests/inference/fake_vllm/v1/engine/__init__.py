FINISH_REASON_STRINGS = ("stop", "length", "abort", "error", "repetition")
