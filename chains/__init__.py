"""The LCEL pieces the graph's nodes call, one concern a module.

Offers the classifier, query condensation, the book retriever, grounded and extractive answers,
citation mapping, selection support, personalize/translate with protected code/links/terms, titles
and summaries. Every prompt lives in `chains.prompts`. Imports only `core`.
"""
