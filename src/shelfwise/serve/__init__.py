"""The decision API: FastAPI routers over each tenant's champion models, never empty.

``create_app`` builds the service from :class:`~shelfwise.serve.tenant.TenantRuntime` objects
(one per tenant: its models, catalogue, online features, response cache) and a
:class:`~shelfwise.serve.auth.KeyRing`; ``shelfwise serve`` builds both from a workspace.
"""
