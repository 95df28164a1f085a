"""summarize - add up meson's testlog.json files and pytest's JUnit XML files
in a directory and print the one closing line "N passed, M failed"; exit 1
when anything failed or nothing ran."""
import json
import os
import sys
import xml.etree.ElementTree as ET


def count_meson(path):
    passed = failed = 0
    with open(path) as fp:
        for line in fp:
            line = line.strip()
            if not line:
                continue
            result = json.loads(line).get("result")
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result != "SKIP":
                failed += 1
    return passed, failed


def count_junit(path):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    passed = failed = 0
    for s in suites:
        tests = int(s.get("tests", 0))
        bad = int(s.get("failures", 0)) + int(s.get("errors", 0))
        skipped = int(s.get("skipped", 0))
        passed += tests - bad - skipped
        failed += bad
    return passed, failed


def main():
    directory = sys.argv[1]
    passed = failed = 0
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if not name.endswith((".json", ".xml")):
            continue  # a report a test writes beside the results (remote-latency.txt)
        p, f = count_meson(path) if name.endswith(".json") else count_junit(path)
        print("%-40s %4d passed, %d failed" % (name, p, f))
        passed += p
        failed += f
    expected = [n for n in ("unit-build.json", "integration-build.xml", "package.xml")
                if not os.path.exists(os.path.join(directory, n))]
    for n in expected:
        print("missing results: %s (that suite did not run)" % n)
        failed += 1
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed or passed == 0 else 0)


if __name__ == "__main__":
    main()
