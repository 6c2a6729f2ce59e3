#!/usr/bin/env python3
"""Writes seed inputs for every fuzz target from the repository's own examples, in each target's
input format (see the comment at the top of fuzz/<target>.cpp). Not run by CI: the committed
corpus (fuzz/corpus/<target>/) was made by minimizing these seeds with libFuzzer:

    fuzz/make_seeds.py build/fuzz/seeds
    scripts/fuzz.sh --seed build/fuzz/seeds 0     # merges build/fuzz/seeds/<target>/ into the corpus

Sources: tests/data/<forge>/ (real deliveries), /work/shared/fixtures/ (Gitea and Forgejo
deliveries, sent to the GitHub target under X-GitHub-Event, when the directory exists),
config/hookrelay.yaml, the ```yaml blocks of docs/*.md, the YAML, template and pattern literals of
the unit and integration tests, and the Jenkins remote API examples.
"""
import hashlib
import json
import pathlib
import re
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED_FIXTURES = pathlib.Path("/work/shared/fixtures")


def fdp_string(text: bytes) -> bytes:
    """A FuzzedDataProvider::ConsumeRandomLengthString() encoding of `text`."""
    return text.replace(b"\\", b"\\\\") + b"\\x"


def fdp_tail(*values_and_sizes) -> bytes:
    """Integers consumed from the end by ConsumeIntegral*(), given in consumption order. Each is
    read from the last unread byte backwards, most significant first, so it sits in the input
    little-endian, and the first one consumed is last."""
    out = b""
    for value, size in values_and_sizes:
        out = value.to_bytes(size, "little") + out
    return out


def ingest_seeds(forge: str):
    data = ROOT / "tests" / "data" / forge
    for headers in sorted(data.glob("*.headers")):
        for body_file in (headers.with_suffix(".json"), headers.with_suffix(".form")):
            if body_file.exists():
                body = body_file.read_bytes()
                if body_file.suffix == ".json" and body_file.stem != "push-branch-update":
                    # Compact: the same coverage in fewer bytes; one fixture keeps its layout.
                    body = json.dumps(json.loads(body), separators=(",", ":"),
                                      ensure_ascii=False).encode()
                text = headers.read_bytes().rstrip(b"\n") + b"\n\n" + body
                yield text + b"\x01"  # signed correctly
                if headers.stem.startswith("ping") or headers.stem.startswith("push-docs"):
                    yield text + b"\x02"  # unsigned, allow_sha1 (the fuzzer flips the rest)
    if forge == "github" and SHARED_FIXTURES.is_dir():
        for other in ("gitea", "forgejo"):
            for headers in sorted((SHARED_FIXTURES / other).glob("*.headers")):
                head = headers.read_bytes()
                event = re.search(rb"^X-Gitea-Event: (.*)$", head, re.M)
                if not event:
                    continue
                head = head.rstrip(b"\n") + b"\nX-GitHub-Event: " + event.group(1)
                body = json.dumps(json.loads(headers.with_suffix(".json").read_bytes()),
                                  separators=(",", ":"), ensure_ascii=False).encode()
                yield head + b"\n\n" + body + b"\x01"


def yaml_seeds():
    yield (ROOT / "config" / "hookrelay.yaml").read_bytes()
    for doc in sorted((ROOT / "docs").glob("*.md")):
        for block in re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S):
            yield block.encode()
    for test in sorted((ROOT / "tests").rglob("*.cpp")) + [ROOT / "fuzz" / "ingest.cpp"]:
        for raw in re.findall(r'R"\((.*?)\)"', test.read_text(), re.S):
            if "sources:" in raw or "rules:" in raw:
                yield raw.encode()


def cpp_literals(path: pathlib.Path):
    for literal in re.findall(r'"((?:[^"\\\n]|\\.)*)"', path.read_text()):
        yield bytes(literal, "utf-8").decode("unicode_escape").encode("latin-1", "ignore")


def template_seeds():
    sources = [ROOT / "tests" / "render" / "template_test.cpp", ROOT / "config" / "hookrelay.yaml",
               ROOT / "docs" / "configuration.md"] + sorted((ROOT / "tests" / "rules").glob("*.cpp"))
    seen = set()
    for path in sources:
        for literal in cpp_literals(path):
            if b"{{" in literal and literal not in seen:
                seen.add(literal)
                yield literal


def pattern_seeds():
    literals = list(cpp_literals(ROOT / "tests" / "rules" / "pattern_test.cpp"))
    literals += [b"main", b"release/*", b"src/**", b"**/*.md", b"v?.?", b"[abc]", b"[!a]",
                 b"{main,master}", b"!docs/**", b"re:v[0-9]+(\\.[0-9]+)*", b"re:.*\\[bot\\]"]
    values = b"\n".join([b"main", b"release/1.x", b"docs/a/b.md", b"README.md", b"v1.2.3",
                          b"dependabot[bot]", b"caf\xc3\xa9", b""])
    for pattern in dict.fromkeys(literals):
        if b"\n" not in pattern:
            yield pattern + b"\n" + values


def jenkins_response_seeds():
    crumb = (b'{"_class":"hudson.security.csrf.DefaultCrumbIssuer","crumb":"'
             + b"3f" * 32 + b'","crumbRequestField":"Jenkins-Crumb"}')
    cookies = [b"JSESSIONID.5f1a2b3c=node01abc.node0; Path=/; HttpOnly",
               b"remember-me=x; Max-Age=0"]
    for url, location, status in (
            (b"http://127.0.0.1:8080/", b"http://127.0.0.1:8080/queue/item/7/", 201),
            (b"https://ci.example.com/jenkins/", b"queue/item/12/", 303),
            (b"http://[::1]:9000/", b"/queue/item/3/", 201)):
        head = fdp_string(url) + fdp_string(location) + b"".join(fdp_string(c) for c in cookies)
        yield head + crumb + fdp_tail((status, 2), (len(cookies), 1))
    yield fdp_string(b"http://j/") + fdp_string(b"") + b"<html>No valid crumb</html>" + \
        fdp_tail((403, 2), (0, 1))


def jenkins_encoding_seeds():
    urls = [b"http://127.0.0.1:8080/", b"HTTPS://ci.example.com/jenkins/", b"http://[::1]:9000/",
            b"http://jenkins", b"http://h:80x/", b"http://user:pw@h/"]
    jobs = [[b"acme", b"app", b"feature/x"], [b"#1", b"100%", b"what?", b"[x]", b"a\\b"],
            [b"", b".", b".."], [b"caf\xc3\xa9", b"my job"]]
    fields = [(b"cause", b"hookrelay: github push on acme/app refs/heads/main"),
              (b"GIT_COMMIT", b"6113728f27ae82c7b1a177c8d03f9e96e0adf246"), (b"a b&c", b"=+%")]
    for i, url in enumerate(urls):
        job = jobs[i % len(jobs)]
        body = b"".join(fdp_string(s) for s in job)
        body += b"".join(fdp_string(n) + fdp_string(v) for n, v in fields)
        yield body + url + fdp_tail((len(job), 1), (len(fields), 1))


TARGETS = {
    "ingest_github": lambda: ingest_seeds("github"),
    "ingest_gitlab": lambda: ingest_seeds("gitlab"),
    "config": yaml_seeds,
    "template": template_seeds,
    "pattern": pattern_seeds,
    "jenkins_response": jenkins_response_seeds,
    "jenkins_encoding": jenkins_encoding_seeds,
}


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: fuzz/make_seeds.py OUTPUT_DIR")
    out = pathlib.Path(sys.argv[1])
    for target, seeds in TARGETS.items():
        folder = out / target
        folder.mkdir(parents=True, exist_ok=True)
        count = 0
        for seed in seeds():
            (folder / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
            count += 1
        print(f"{target}: {count} seeds in {folder}")


if __name__ == "__main__":
    main()
