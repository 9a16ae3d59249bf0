"""Automatic MITI coding (issue 16), the pure part: a trained classifier and the LLM coder's prompt.

Nothing here imports Django: ``classifier`` trains, cross-validates, saves and loads a scikit-learn
coder from plain samples; ``llm_coder`` builds the chat messages that ask a language model to code a
volley and checks its answer. docs/machine_coding.md describes both.
"""
