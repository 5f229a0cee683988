"""External engines, one package per provider API, and what they share: the pooled HTTP
transport of the lean clients and the classification of provider failures."""
