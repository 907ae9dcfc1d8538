"""Finance views of a completed job: `GET /v1/jobs/{id}/summary`, `/report`, `/compare/{other}`.

Each is computed from the job's stored outputs (`result.parquet`, `errors.parquet`
and the run's counts in its record) with the same code as `raf summary`,
`raf report` and `raf compare` (`app.summary`, `app.report`, `app.compare`), so
a job and the CLI on the same files say the same thing. The summary is computed
once and kept beside the outputs (`summary.json`); outputs never change after a
job completes, so the kept file cannot go stale.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass as openapi_dataclass
from typing import Annotated, Any

import msgspec
import polars as pl
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, Operation, Schema
from litestar.params import PathParameter

from app import summary as roster
from app.compare import CompareSummary
from app.jobs import _JOB_DEPENDENCIES, JobId, JobRecord, JobService, completed_job
from app.openapi import failure_responses

OtherJobId = Annotated[str, PathParameter(description="The job to compare with (B).")]
NOT_READY = failure_responses(404, 409, _409="The job (or the other job) has not completed")


@openapi_dataclass
class HtmlReportOperation(Operation):
    """The report is an HTML page."""

    def __post_init__(self) -> None:
        self.responses = {
            **(self.responses or {}),
            "200": OpenAPIResponse(
                description="A self-contained HTML page (no script or style from outside)",
                content={"text/html": OpenAPIMediaType(schema=Schema(type="string"))},
            ),
        }

SUMMARY_FILE = "summary.json"


def job_summary(service: JobService, job: JobRecord) -> bytes:
    """The job's roster summary as JSON bytes (computed once, then read from `summary.json`)."""
    kept = service.store.job_dir(job.job_id) / SUMMARY_FILE
    if kept.is_file():
        return kept.read_bytes()
    run = json.loads(job.summary or "{}")
    summary = roster.summary_of_rows(
        pl.scan_parquet(service.store.result_path(job.job_id)),
        payment_year=job.payment_year,
        members_received=run.get("member_count"),
        errors=pl.read_parquet(service.store.errors_path(job.job_id)),
        diagnoses_summary=run.get("diagnoses_summary"),
        warnings=run.get("warnings") or (),
        reference=run.get("reference"),
    )
    data = roster.encode(summary)
    staging = kept.with_name(f"{SUMMARY_FILE}.{uuid.uuid4().hex[:12]}.partial")
    staging.write_bytes(data)
    os.replace(staging, kept)
    return data


class JobFinanceController(Controller):
    """Roster summary, HTML report and year-over-year comparison of the caller's completed jobs."""

    path = "/v1/jobs"
    tags = ["jobs"]  # noqa: RUF012
    dependencies = _JOB_DEPENDENCIES

    @get(
        "/{job_id:str}/summary",
        summary="Roster summary of a completed job (counts, score statistics, dollars)",
        sync_to_thread=True,
        response_description="`RosterSummary` (see `raf summary`)",
        responses={200: ResponseSpec(roster.RosterSummary, description="The roster summary",
                                     generate_examples=False), **NOT_READY},
    )
    def summary(
        self, jobs: NamedDependency[JobService], owner: NamedDependency[str], job_id: JobId
    ) -> Response[Any]:
        job = completed_job(jobs, owner, job_id, "summary")
        return Response(job_summary(jobs, job), media_type="application/json")

    @get(
        "/{job_id:str}/report",
        summary="Self-contained HTML report of a completed job (renders offline)",
        sync_to_thread=True,
        operation_class=HtmlReportOperation,
        responses=NOT_READY,
    )
    def report(
        self, jobs: NamedDependency[JobService], owner: NamedDependency[str], job_id: JobId
    ) -> Response[Any]:
        from app.report import render_report

        job = completed_job(jobs, owner, job_id, "report")
        summary = roster.decode(job_summary(jobs, job))
        return Response(
            render_report(summary, f"Risk-score roster summary, PY{job.payment_year}, job {job_id}"),
            media_type="text/html; charset=utf-8",
        )

    @get(
        "/{job_id:str}/compare/{other_id:str}",
        summary="Year over year: this job (A) against another completed job (B), by MemberID",
        sync_to_thread=True,
        responses={200: ResponseSpec(CompareSummary, description="A against B",
                                     generate_examples=False), **NOT_READY},
    )
    def compare(
        self,
        jobs: NamedDependency[JobService],
        owner: NamedDependency[str],
        job_id: JobId,
        other_id: OtherJobId,
    ) -> Response[Any]:
        from app.compare import compare_rows, compare_summary

        first = completed_job(jobs, owner, job_id, "result")
        second = completed_job(jobs, owner, other_id, "result")
        per_member = compare_rows(
            pl.scan_parquet(jobs.store.result_path(job_id)),
            pl.scan_parquet(jobs.store.result_path(other_id)),
        )
        result = compare_summary(
            per_member, payment_year_a=first.payment_year, payment_year_b=second.payment_year
        )
        return Response(msgspec.json.encode(result), media_type="application/json")
