"""The rules the stores keep and the services decide on, as plain values and arithmetic: no
I/O, no Redis. `breaker`: a target's breaker states; `quota`: the verdict of an admission and
a rate-limit bucket; `tokens`: the tokens charged at admission; `webhooks`: which deliveries a
result makes, what a receiver's answer means, and the signature headers."""
