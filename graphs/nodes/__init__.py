"""The graph's nodes: intake (route), ask (condense, retrieve, answer), selection, rewrite, memory."""
