"""importCsv: the CSV import of the CLI, for portals (hub/imports.py)."""

from __future__ import annotations

from enum import Enum

import strawberry
from strawberry.types import Info

from hub import imports
from schema.permissions import allowed
from tenants.roles import Group


@strawberry.enum
class ImportKind(Enum):
    SKUS = "skus"
    LOCATIONS = "locations"
    STOCK = "stock"


@strawberry.input
class ColumnMapping:
    column: str = strawberry.field(description="A header of the file")
    field: str = strawberry.field(description="What it holds, e.g. code, name, gtin, lot_code, quantity")


@strawberry.type
class ImportRowError:
    row: int = strawberry.field(description="Row number as a spreadsheet shows it (the header is row 1)")
    column: str | None
    reason: str


@strawberry.type
class ImportReport:
    kind: ImportKind
    dry_run: bool
    all_or_nothing: bool
    rows: int
    valid: int
    created: int = strawberry.field(description="New SKUs or locations; stock: positions counted")
    updated: int
    unchanged: int = strawberry.field(description="Rows already true (a re-import changes nothing)")
    applied: bool = strawberry.field(description="Something was written (dry run: would be)")
    errors: list[ImportRowError]
    ignored_columns: list[str]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=allowed(Group.master_data),
        description="Import SKUs, locations or stock counts from CSV text (up to the request size limit; larger "
        "files: `lotpulse import`): a report per row; all or nothing unless validRowsOnly",
    )
    async def import_csv(
        self,
        info: Info,
        kind: ImportKind,
        csv: str,
        dry_run: bool = False,
        valid_rows_only: bool = False,
        mapping: list[ColumnMapping] | None = None,
    ) -> ImportReport:
        access = await info.context.access()
        hub = info.context.hub
        report = await imports.import_csv(
            access, hub.database, kind.value, imports.lines_of(csv), dry_run=dry_run,
            all_or_nothing=not valid_rows_only, mapping={m.column: m.field for m in mapping or []},
            audit_threshold=hub.settings.audit_count_threshold,
        )
        return ImportReport(
            kind=kind, dry_run=report.dry_run, all_or_nothing=report.all_or_nothing, rows=report.rows,
            valid=report.valid, created=report.created, updated=report.updated, unchanged=report.unchanged,
            applied=report.applied, errors=[ImportRowError(row=e.row, column=e.column, reason=e.reason)
                                            for e in report.errors],
            ignored_columns=report.ignored_columns,
        )
