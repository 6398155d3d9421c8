"""``OpenShiftRoutes`` over the service: each routing event becomes one service
transaction (``Service.apply_openshift_event``, service/openshift.py holds the rules)
under the source's actor, ``openshift``, with the message id in the change log."""

from __future__ import annotations

import logging

from portway.protocol.routing_spi import RoutingEvent, action_name
from portway.service import Actor, Service
from portway.sources.openshift_routes import OpenShiftPolicy

log = logging.getLogger("portway.sources.openshift")


class ServiceOpenShiftRoutes:
    """The service-backed ``OpenShiftRoutes``."""

    def __init__(self, service: Service, policy: OpenShiftPolicy, *, source: str = "openshift"):
        self._service = service
        self._policy = policy
        self._actor = Actor.system(source)

    def apply(self, event: RoutingEvent, message_id: str) -> None:
        changed = self._service.apply_openshift_event(self._actor, event, message_id, self._policy)
        if not changed:  # a redelivery, or a removal of what is not there
            log.debug("message %s (%s) changed nothing", message_id, action_name(event))
