"""Rule regexes run in linear time (RE2): a rule cannot hang the gateway, and `check` refuses
what RE2 cannot run (backreferences, lookaround) with the file, line and column."""

from __future__ import annotations

import json

from tests.mail import make_mail

REDOS_RULE = 'rules:\n  - name: Catastrophic\n    when:\n      subject: {regex: "(a+)+$"}\n    then:\n      - skip: all a\n'


def test_a_catastrophic_regex_does_not_hang_the_gateway(home):
    # `0-` sorts before folders.yaml, so this rule sees every mail first.
    (home.root / "rules" / "0-redos.yaml").write_text(REDOS_RULE)
    assert home.cli("check").returncode == 0
    home.drop("VLeads", make_mail(sender="Forty One <a41@x.example>", subject="a" * 40 + "!"))
    home.drop("VLeads", make_mail(sender="Hundred Kay <a100k@y.example>", subject="a" * 100_000 + "!"))
    home.drop("VLeads", make_mail(sender="All A <alla@z.example>", subject="aaaa"))
    # A backtracking engine needs ~2^40 steps for the first mail: this would not end in the timeout.
    res = home.cli("run", "--once", timeout=240)
    assert res.returncode == 0, res.stderr
    leads = sorted(e for lead in home.dump()["leads"] for e in lead["emails"])
    assert leads == ["a100k@y.example", "a41@x.example"]
    assert home.states() == {"done": 2, "skipped": 1}
    skipped = json.loads(home.cli("explain", "3", "--json", check=True).stdout)
    assert "Catastrophic" in json.dumps(skipped)


def test_check_refuses_a_backreference_and_lookaround_with_their_position(home):
    (home.root / "rules" / "zz-re.yaml").write_text(
        "rules:\n"
        "  - name: Repeated word\n"
        "    when:\n"
        "      subject: {regex: '(\\w+) \\1'}\n"
        "    then: [stop]\n"
        "  - name: Not followed\n"
        "    when: {body: {regex: 'invoice(?!d)'}}\n"
        "    then: [stop]\n"
    )
    res = home.cli("check")
    assert res.returncode == 1
    assert (
        "rules/zz-re.yaml:4:24: bad regex '(\\w+) \\1': invalid escape sequence: \\1 at position 6"
        " (rules use RE2 syntax: no backreferences, lookahead or lookbehind)"
    ) in res.stderr, res.stderr
    assert (
        "rules/zz-re.yaml:7:26: bad regex 'invoice(?!d)': invalid perl operator: (?! at position 7"
        " (rules use RE2 syntax: no backreferences, lookahead or lookbehind)"
    ) in res.stderr, res.stderr
