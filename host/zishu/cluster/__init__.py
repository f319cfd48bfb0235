"""Several machines sharing one job queue on Redis: the per-cluster secret that signs every task
(``secret``), and the Huey on Redis that signs, verifies and routes tasks (``redisqueue``).

Huey does the queueing (its Redis storage, priorities, ``SignedSerializer``); this wing holds only
what Huey lacks: where the secret lives, a refusal that is logged, and a worker that listens to the
named queues of the job types its user enabled.
"""
