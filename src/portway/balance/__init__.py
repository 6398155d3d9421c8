"""Load-balancing algorithms and session persistence: pure, with injected randomness and
clocks, state keyed by stable backend ids so that it survives snapshot swaps."""

from portway.balance.base import Balancer, make_balancer
from portway.balance.persistence import Stickiness
from portway.balance.round_robin import RoundRobin

__all__ = ["Balancer", "RoundRobin", "Stickiness", "make_balancer"]
