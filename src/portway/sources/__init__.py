"""Outside configuration sources: tasks of the control process that turn events from
other systems (Toolforge registrations, Kubernetes Services, OpenShift routing events)
into service-layer calls under an actor that names the source.

Modules: ``identd`` (RFC 1413 lookups), ``registration`` (the Toolforge TCP 8282
listener).
"""
