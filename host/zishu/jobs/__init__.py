"""Long work as jobs: a Huey queue carries them, a ``job`` table (peewee) holds the truth about them.

``records`` owns the job table and its states, ``events`` wakes live views when a job changes,
``context`` is what a running job sees (``JobContext``; ``remote`` has the one for another node),
``queue`` puts jobs on Huey (SQLite in ZISHU_HOME by default, Redis with ``ZISHU_QUEUE``) and runs
them through the job types plugins register.
"""

from .queue import JobContext, JobQueue, JobType
from .records import Job, Status, changes_since

__all__ = ["Job", "JobContext", "JobQueue", "JobType", "Status", "changes_since"]
