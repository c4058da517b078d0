"""django-q2 tasks of the dead-letter inbox: thin wrappers, ids in, one service call."""

from dlq.jobs import bulk_job_run


def bulk_job_task(job_id: int) -> str:
    job = bulk_job_run(job_id=job_id)
    if job is None:
        return "job no longer exists"
    return f"job {job.pk}: {job.get_state_display().lower()}, {job.processed} of {job.total} letters"
