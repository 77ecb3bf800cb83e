"""The runtime: per-transfer actors with bounded mailboxes, supervisors and the system root.

Actors reach the store and the world only through the ports in engine/ (see
../shared/design/ARCHITECTURE.md); they are built on this foundation by the next issue.
"""
