"""Load-balancing algorithms: pure, with injected randomness, state keyed by backend id."""

from portway.balance.base import Balancer, make_balancer
from portway.balance.round_robin import RoundRobin

__all__ = ["Balancer", "RoundRobin", "make_balancer"]
