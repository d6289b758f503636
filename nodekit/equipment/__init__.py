"""Equipment agents of nodekit: digital twins, protocol readers, probe,
collector (poll -> MQTT) and ingest (MQTT -> PostgreSQL).

Shipped to the hosts as the top-level package ``nodekit_equipment``; every
module runs with ``python -m nodekit_equipment.<module>``. Only relative
imports inside the package, only stdlib + pymodbus, asyncua, paho-mqtt and
psycopg outside it.
"""
