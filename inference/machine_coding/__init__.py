"""Machine coders of MITI behaviour codes: a trained text classifier and an LLM prompted with the codebook.

Pure modules (no Django): plain data in, plain data out.
"""
