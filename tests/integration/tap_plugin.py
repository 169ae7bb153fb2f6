"""pytest plugin: report each test as a TAP line on file descriptor 3 for automake's TAP driver."""
import os


class TapReporter:
    def __init__(self, fd):
        self.fd = fd
        self.count = 0
        self.outcomes = {}

    def write(self, line):
        os.write(self.fd, (line + "\n").encode())

    def pytest_runtest_logreport(self, report):
        previous = self.outcomes.get(report.nodeid)
        if report.failed:
            self.outcomes[report.nodeid] = ("failed", report.when)
        elif report.skipped and previous is None:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else "skipped"
            self.outcomes[report.nodeid] = ("skipped", reason)
        elif report.passed and report.when == "call" and previous is None:
            self.outcomes[report.nodeid] = ("passed", None)

    def pytest_runtest_logfinish(self, nodeid, location):
        outcome, detail = self.outcomes.get(nodeid, ("failed", "no result"))
        self.count += 1
        name = nodeid.split("::", 1)[-1]
        if outcome == "passed":
            self.write(f"ok {self.count} - {name}")
        elif outcome == "skipped":
            self.write(f"ok {self.count} - {name} # SKIP {detail}")
        else:
            self.write(f"not ok {self.count} - {name} (failed in {detail}; see the log)")

    def pytest_sessionfinish(self, session, exitstatus):
        if self.count == 0 and exitstatus not in (0, 5):
            self.write(f"not ok 1 - pytest failed before running tests (exit {int(exitstatus)})")
            self.count = 1
        self.write(f"1..{self.count}")


def pytest_configure(config):
    try:
        os.fstat(3)
    except OSError:
        return  # run by hand: no TAP stream
    config.pluginmanager.register(TapReporter(3), "tap-reporter")
