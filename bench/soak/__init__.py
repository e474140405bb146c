"""``make soak``: many jobs through the local AWS under injected faults and hostile inputs (issue 8).

- ``mix``: what is submitted (valid jobs with per-job faults, the hostile inputs) and what must
  become of each;
- ``schedule``: the faults that hit whatever runs at the time (task kills, DynamoDB throttling,
  a restart of the local AWS);
- ``run``: one run against a ``LocalAws``, returning an ``Observation`` and its violations;
- ``checks``: the invariants, each a function of an ``Observation``;
- ``report``: the Markdown/JSON report under ``bench/results/``.

    .venv/bin/python -m bench.soak --jobs 300 [--seed 1] [--no-restart] [--report-dir bench/results]
"""
