import Foundation
import GridContract
import StudyLifecycle
import Testing

/// The table of transitions is the spec: this literal was reviewed by hand, the code must
/// produce it, and docs/LIFECYCLE.md must hold it.
let transitionTableSpec = """
| event | received (open) | received (committed) | queued | processing | screened | routing | assigned (E1) | accepted (E1) | reported | failed | quarantined | not-routable |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
| commit | · +announce | — | — | — | — | — | — | — | — | — | — | — |
| fan-out (committed stream) | — | → queued +enqueue | = +enqueue | — | — | — | — | — | — | — | — | — |
| late instance | — | — | · | · | · | · | · | · | · | · | · | · |
| instance started | — | — | → processing | — | — | — | — | — | — | — | — | — |
| instance started, old generation | — | — | — | — | — | — | — | — | — | — | — | — |
| screened | — | — | → screened | → screened | — | — | — | — | — | — | — | — |
| screened, old generation | — | — | — | — | — | — | — | — | — | — | — | — |
| no readable instance | — | — | → quarantined | → quarantined | — | — | — | — | — | — | — | — |
| no diagnostic image | — | — | → not-routable | → not-routable | — | — | — | — | — | — | — | — |
| study task dead-lettered | — | — | → failed | → failed | — | — | — | — | — | — | — | — |
| instance task dead-lettered | — | — | — | — | — | — | — | — | — | — | — | — |
| hand-off (screened stream) | — | — | — | — | → routing +submit | = +submit | — | — | — | — | — | — |
| router: offered to E2 | — | — | — | — | — | → assigned (E2) +metric | · (E2) | → assigned (E2) | — | — | — | — |
| router: offered to E1, replayed (old id) | — | — | — | — | — | — | — | — | — | — | — | — |
| router: accepted by E1 | — | — | — | — | — | → accepted (E1) | → accepted | · | — | — | — | — |
| router: declined by E1 (holder) | — | — | — | — | — | · | → routing | → routing | — | — | — | — |
| router: declined by E2 (not holder) | — | — | — | — | — | · | · | · | — | — | — | — |
| router: accept timeout of E1 | — | — | — | — | — | · | → routing | · | — | — | — | — |
| router: completed by E1 | — | — | — | — | — | → reported (E1) +blobs | → reported +blobs | → reported +blobs | — | — | — | — |
| router: cancelled | — | — | — | — | — | → failed | → failed | → failed | — | — | — | — |
| router: widened (no study change) | — | — | — | — | — | · | · | · | — | — | — | — |
| router: another case's event | — | — | — | — | — | — | — | — | — | — | — | — |
| sweep, all well | — | → queued +enqueue | — | — | → routing +submit | — | — | — | = +blobs | — | — | — |
| sweep, follow-up lost / time up | · +announce | → queued +enqueue | · (gen 1) +enqueue | → queued (gen 1) +enqueue | → routing +submit | = +submit | → routing +submit | → routing +submit | = +blobs | = +expire | = +expire | = +expire |
| operator requeue | — | — | — | — | — | — | — | — | — | → queued (gen 1) +enqueue | → queued (gen 1) +enqueue | → queued (gen 1) +enqueue |
"""
