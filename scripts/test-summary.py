#!/usr/bin/env python3
"""Summarises meson testlog JSON files: per-test Check counts and one closing
line 'N passed, N failed, N skipped'. Exits 1 if anything failed or skipped."""
import json
import re
import sys

passed = failed = skipped = checks = 0
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            t = json.loads(line)
            res = t.get("result")
            name = f'{path.split("/")[0]}:{t.get("name")}'
            m = re.search(r"Checks: (\d+), Failures: (\d+), Errors: (\d+)", t.get("stdout") or "")
            if m:
                checks += int(m.group(1))
            if res == "OK":
                passed += 1
            elif res == "SKIP":
                skipped += 1
                print(f"SKIPPED (not allowed here): {name}")
            else:
                failed += 1
                print(f"FAILED: {name} ({res})")
print(f"Check test cases run: {checks}")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or skipped else 0)
