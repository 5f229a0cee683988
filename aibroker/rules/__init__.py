"""The rules the stores keep and the dispatcher decides on, as plain values and arithmetic: no
I/O, no Redis. `breaker`: a target's breaker states; `quota`: the verdict of an admission and
a rate-limit bucket; `tokens`: the tokens charged at admission."""
