"""The web app in a real headless Chromium, as a player uses it: sign up, confirm the address
through the mailed link, a failed job's message, two clips uploaded and rendered live, the
result played and both formats downloaded (and seed 001's navigation to the download), every
page free of console errors and of serious axe-core findings, screenshots of every page at
390 and 1280 px kept, and the share page opened signed out on a phone.

Run by the api crate's integration test `web_app`, which starts the app and its worker:
    app_flow.py BASE_URL MAIL_DIR ARTIFACTS CLIP CLIP BROKEN_CLIP
It asks the test for what only the service's side can do, a line each, and waits for `go` on
standard input before going on: `start-worker` once a job waits with no worker running,
`weekly-run` to make last week's montage, `feature` to have an admin feature it.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

BASE, MAIL_DIR, ARTIFACTS = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
CLIPS, BROKEN = sys.argv[4:6], sys.argv[6]
EMAIL = f"player-{os.getpid()}-{int(time.time())}@example.com"
PASSWORD = "clip-montage-42"
TARGET_SECONDS = 10
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
# axe-core from its npm package (scripts/lib.sh installs it); evaluated through the DevTools
# protocol, which the pages' Content-Security-Policy does not stop, so the pages keep theirs.
AXE = Path(os.environ["AXE_JS"]).read_text()


def eventually(what, check, timeout=60.0):
    """Polls `check` until it answers something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def mailed_token(page_name):
    """The token of the newest link to `page_name` mailed to this player."""
    def find():
        for mail in sorted(MAIL_DIR.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True):
            text = mail.read_text(errors="replace").replace("=\r\n", "").replace("=\n", "")
            if EMAIL in text:
                found = re.search(rf"/{page_name}\?token=3D([\w-]+)|/{page_name}\?token=([\w-]+)", text)
                if found:
                    return found.group(1) or found.group(2)
        return None
    return eventually(f"the {page_name} mail", find)


def ffprobe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


class Console:
    """Every console error and uncaught exception of every page, with where it happened."""

    def __init__(self):
        self.errors = []

    def watch(self, page):
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"{page.url}: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: uncaught {e}"))


def landing_page(page):
    """A signed-out visitor lands on what the service does, with signing up as the main action,
    at phone and desktop widths, with nothing serious for axe-core and no sideways scroll."""
    for size, viewport in (("390", PHONE), ("1280", DESKTOP)):
        page.set_viewport_size(viewport)
        page.goto(BASE + "/")
        expect(page.get_by_role("heading", level=1)).to_have_text("Your best plays, made into montages")
        expect(page.get_by_role("link", name="Make your first montage, free")).to_have_attribute("href", "#/signup")
        assert accessibility_findings(page) == [], f"the landing page at {size} px"
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the landing page is {overflow}px wider than {size} px"
        page.screenshot(path=ARTIFACTS / f"{size}-landing.png", full_page=True)


def sign_up(page):
    landing_page(page)
    page.get_by_role("link", name="Sign in", exact=True).first.click()
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Make a montage", exact=True)).to_be_visible()


def confirm_address(page):
    page.goto(f"{BASE}/verify-email?token={mailed_token('verify-email')}")
    expect(page.get_by_text("Your email address is confirmed")).to_be_visible()
    assert page.url == BASE + "/", f"the token leaves the address bar: {page.url}"


def upload_and_start(page, files, seconds, examined=False):
    """Uploads `files` on the create page, orders and sets the montage up, and starts it. With
    `examined` (a worker runs), each clip first shows the thumbnail the service made of it."""
    page.goto(BASE + "/#/")
    page.get_by_label("Choose clips").set_input_files(files)
    for name in files:
        row = page.get_by_role("listitem").filter(has_text=Path(name).name)
        expect(row.get_by_text("uploaded")).to_be_visible(timeout=60_000)
        expect(row.get_by_role("progressbar")).to_have_attribute("value", "100")
        if examined:
            thumbnail = row.locator(".thumb img")
            expect(thumbnail).to_be_visible(timeout=60_000)
            thumbnail.evaluate("img => img.decode()")
            assert thumbnail.evaluate("img => img.naturalWidth") > 0, f"the thumbnail of {name} loaded"
            expect(row).to_contain_text(re.compile(r"\d+ s ·"))
    if examined:
        page.screenshot(path=ARTIFACTS / "390-create-clips.png" if page.viewport_size["width"] < 500
                        else ARTIFACTS / "1280-create-clips.png", full_page=True)
    uploaded = page.locator("li[data-clip]").evaluate_all("rows => rows.map((r) => r.dataset.clip)")
    if len(files) > 1:
        # The last clip moved first: the montage's order is the list's.
        page.get_by_role("button", name=f"Move {Path(files[-1]).name} earlier").click()
        uploaded = uploaded[:-2] + [uploaded[-1], uploaded[-2]]
    page.get_by_label("Chill").check()
    music = page.get_by_label("Music")
    own = page.get_by_label("Your track")
    expect(own).to_be_hidden()
    music.select_option(":own")
    expect(own).to_be_visible()
    expect(own).to_have_attribute("required", "")
    music.select_option("calm_acoustic_1")
    expect(own).to_be_hidden()
    preview = page.get_by_label("Preview of the chosen track")
    expect(preview).to_be_visible()
    expect(preview).to_have_attribute("src", "/api/v2/music/calm_acoustic_1/preview")
    length = page.get_by_label("Length")
    length.evaluate("(e, v) => { e.value = v; e.dispatchEvent(new Event('input')); }", str(seconds))
    camera = page.locator("#f-facecam")
    if examined:
        # Placed by hand on the first clip's thumbnail, from the keyboard.
        box = page.get_by_role("group", name=re.compile("^Your camera on the clip"))
        expect(box).to_be_visible()
        for key in ["ArrowLeft"] * 3 + ["Shift+ArrowDown"] * 2:
            box.press(key)
        placed = "0.700,0.030,0.250,0.320"
        expect(camera).to_have_value(placed)
    else:
        camera.select_option(label="Top right")
        placed = "0.73,0.03,0.25,0.3"
    creating = lambda r: r.method == "POST" and r.url.endswith("/api/v2/jobs")
    with page.expect_request(creating) as created:
        page.get_by_role("button", name="Make my montage").click()
    form = created.value.post_data
    assert 'name="facecam"' in form and placed in form, form
    assert ",".join(uploaded) in form, f"clip_ids in the list's order {uploaded}: {form}"
    expect(page.get_by_role("heading", name="Montage", exact=True)).to_be_visible()
    job_id = page.url.rsplit("/", 1)[-1]
    assert re.fullmatch(r"[0-9a-f-]{36}", job_id), page.url
    return job_id


def part_number(url):
    found = re.search(r"[?&]partNumber=(\d+)", url)
    return int(found.group(1)) if found else None


def resumed_upload(page, console):
    """A tab closed mid-upload: picking the file again sends only the parts storage lacks,
    and a part whose connection drops is sent again."""
    big = ARTIFACTS / "large-clip.mp4"
    with open(big, "wb") as out:
        out.write(Path(CLIPS[0]).read_bytes())
        out.truncate(17 * 1024 * 1024)  # three 8 MiB parts: 8 + 8 + 1
    page.goto(BASE + "/#/")
    page.route(re.compile(r"partNumber=[23]\b"), lambda route: None)  # held: never answered
    with page.expect_response(lambda r: part_number(r.url) == 1 and r.request.method == "PUT") as first:
        page.get_by_label("Choose clips").set_input_files(str(big))
    assert first.value.ok, first.value.status
    page.reload()  # the tab goes away with parts 2 and 3 still held
    page.unroute_all(behavior="ignoreErrors")

    sent = []
    dropped = []

    def drop_once(route):
        if not dropped:
            dropped.append(part_number(route.request.url))
            return route.abort("connectionreset")
        return route.continue_()
    page.route(re.compile(r"partNumber=3\b"), drop_once)
    page.on("request", lambda r: r.method == "PUT" and sent.append(part_number(r.url)))
    page.get_by_label("Choose clips").set_input_files(str(big))
    row = page.get_by_role("listitem").filter(has_text=big.name)
    expect(row.get_by_text("uploaded")).to_be_visible(timeout=60_000)
    page.unroute_all(behavior="ignoreErrors")
    assert dropped == [3], dropped
    assert sorted(sent) == [2, 3, 3], f"after the reload only parts 2 and 3 go (3 twice): {sent}"
    # The browser reports the connection this test dropped; nothing else may be reported.
    injected = [e for e in console.errors if "ERR_CONNECTION_RESET" in e]
    assert len(injected) == 1, console.errors
    console.errors.remove(injected[0])


def failed_job(page):
    """With no worker running the job waits; once one runs, the failure is shown in words."""
    upload_and_start(page, [BROKEN], TARGET_SECONDS)
    expect(page.get_by_text("Waiting for a free renderer")).to_be_visible()
    ask_the_test("start-worker")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("is not a video we can read", timeout=60_000)
    expect(page.locator(".status")).to_have_text("Failed")


def rendered_job(page):
    job_id = upload_and_start(page, CLIPS, TARGET_SECONDS, examined=True)
    # Every estimate the page shows while the montage renders, kept as it changes.
    page.evaluate("""() => {
        window.estimates = [];
        new MutationObserver(() => {
            const said = document.querySelector('main [role=status]')?.textContent.match(/About \\d+ (s|min) left/);
            if (said) window.estimates.push(said[0]);
        }).observe(document.getElementById('main'), { subtree: true, childList: true, characterData: true });
    }""")
    # Once rendered, the status is in words, the result comes first and the progress goes.
    expect(page.locator(".status")).to_have_text("Ready", timeout=120_000)
    estimates = page.evaluate("window.estimates")
    assert estimates, "the page said how long was left while it rendered"
    expect(page.locator("main section").first).to_have_class("result")
    expect(page.get_by_role("progressbar", name="Progress")).to_be_hidden()
    return job_id


def play(page, fmt):
    video = page.locator(f"video[data-format={fmt}]")
    expect(video).to_have_attribute("poster", re.compile(r"^http"))
    duration = video.evaluate("""async (v) => {
        await v.play();
        await new Promise((done) => { const tick = () => v.currentTime > 0.5 ? done() : setTimeout(tick, 50); tick(); });
        v.pause();
        return v.duration;
    }""")
    assert 5 <= duration <= TARGET_SECONDS + 0.5, f"{fmt} plays for {duration} s"
    return duration


def download(page, fmt, size):
    with page.expect_download() as started:
        page.get_by_role("button", name=f"Download {fmt}").click()
    path = ARTIFACTS / f"montage-{fmt}.mp4"
    started.value.save_as(path)
    probe = ffprobe(path)
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == size, f"{fmt}: {video['width']}x{video['height']}"
    return float(probe["format"]["duration"])


def navigated_download(browser, context, job_id):
    """Seed 001's last line in the signed-in browser (its file pass cookie); a signed-out browser is refused."""
    page = context.new_page()
    page.goto(f"{BASE}/#/jobs/{job_id}")
    expect(page.locator("video").first).to_be_visible()
    with page.expect_download() as started:
        page.evaluate("id => { window.location.href = `/api/v2/jobs/${id}/download?format=landscape`; }", job_id)
    path = ARTIFACTS / "montage-navigated.mp4"
    started.value.save_as(path)
    video = next(s for s in ffprobe(path)["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (1920, 1080), f"navigated: {video['width']}x{video['height']}"
    page.close()
    stranger = browser.new_context()
    refused = stranger.new_page().goto(f"{BASE}/api/v2/jobs/{job_id}/download?format=landscape")
    assert refused.status == 401, f"a signed-out browser got {refused.status}"
    stranger.close()


def accessibility_findings(page):
    """axe-core's serious and critical findings on the page as it stands."""
    page.evaluate(AXE + "\n;0")
    return page.evaluate("""async () => (await axe.run(document, { resultTypes: ['violations'] })).violations
        .filter((v) => ['serious', 'critical'].includes(v.impact))
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`)""")


def shot_name(address):
    return re.sub(r"[^a-z0-9]+", "-", address.lower()).strip("-") or "create"


def every_page_loads(context, console, job_id):
    """Every page of the app, signed in, at phone and desktop widths: it loads without a console
    error, axe-core finds nothing serious, nothing scrolls sideways, and a screenshot is kept."""
    pages = ["/#/", "/#/jobs", f"/#/jobs/{job_id}", "/#/library", "/#/weekly", "/#/accounts", "/#/plan",
             "/#/settings", "/billing", "/billing/success", "/billing/cancelled", "/accounts/linked?status=linked"]
    # One signed-in context, resized: a copy of its session would spend its single-use refresh token.
    page = context.new_page()
    console.watch(page)
    for size, viewport in (("390", PHONE), ("1280", DESKTOP)):
        page.set_viewport_size(viewport)
        for address in pages:
            before = len(console.errors)
            page.goto(BASE + address)
            expect(page.locator("main h1")).to_be_visible()
            page.wait_for_load_state("networkidle")
            assert len(console.errors) == before, console.errors[before:]
            assert accessibility_findings(page) == [], f"{address} at {size} px"
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{address} is {overflow}px wider than {size} px"
            name = shot_name(address.replace(job_id, "job"))
            page.screenshot(path=ARTIFACTS / f"{size}-{name}.png", full_page=True)
    page.close()


def share_page_for_friends(browser, page, console):
    """The link the job page gives, opened signed out on a phone: the poster shows before play,
    the portrait cut is the one shown, nothing scrolls sideways, and axe-core finds nothing serious."""
    page.get_by_role("button", name="Get a public link").click()
    link = page.locator("a[href*='/s/']")
    path = link.evaluate("a => new URL(a.href).pathname")
    address = link.get_attribute("href")
    page.get_by_role("button", name="Copy link").click()
    expect(page.get_by_text("Link copied.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == address
    page.get_by_role("button", name="Share…").click()
    eventually("the share sheet to get the link", lambda: page.evaluate("window.sharedThroughSheet?.url") == address)
    friend = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    phone = friend.new_page()
    console.watch(phone)
    portrait_poster = lambda r: (r.ok and r.headers.get("content-type") == "image/jpeg"
                                 and r.request.redirected_from is not None
                                 and "/poster?format=portrait" in r.request.redirected_from.url)
    with phone.expect_response(portrait_poster):
        phone.goto(BASE + path)
    expect(phone.get_by_role("heading", level=1)).to_be_visible()
    expect(phone.locator("video.portrait")).to_be_visible()
    expect(phone.locator("video.landscape")).to_be_hidden()
    assert phone.locator("video.portrait").evaluate("v => v.paused && v.currentTime === 0")
    expect(phone.get_by_role("link", name="Make your own montage")).to_have_attribute("href", "/")
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the share page is {overflow}px wider than a phone"
    assert accessibility_findings(phone) == []
    phone.screenshot(path=ARTIFACTS / "390-share.png", full_page=True)
    friend.close()
    wide = browser.new_context(viewport=DESKTOP)
    desktop = wide.new_page()
    desktop.goto(BASE + path)
    expect(desktop.locator("video.landscape")).to_be_visible()
    expect(desktop.locator("video.portrait")).to_be_hidden()
    desktop.screenshot(path=ARTIFACTS / "1280-share.png", full_page=True)
    wide.close()


def history_shows_posters(page, job_id):
    """The history is a gallery: the rendered montage shows its poster (through the file pass
    cookie), its length and its status in words, and leads to its page; the failed one says so."""
    page.goto(f"{BASE}/#/jobs")
    card = page.locator(f"a[href='#/jobs/{job_id}']")
    expect(card).to_contain_text(f"{TARGET_SECONDS} s")
    expect(card.locator(".status")).to_have_text("Ready")
    poster = card.locator("img.poster")
    expect(poster).to_be_visible()
    poster.evaluate("img => img.decode()")
    assert poster.evaluate("img => img.naturalWidth") > 0, "the poster loaded"
    expect(page.locator(".gallery .status", has_text="Failed")).to_have_count(1)
    card.click()
    expect(page.locator("main .result video").first).to_be_visible()


def delete_asks_first(page):
    """Deleting asks in a modal dialog: focus starts on the safe answer and stays inside while
    tabbing, Escape keeps the montage and gives focus back to the button; "Delete" deletes."""
    page.goto(f"{BASE}/#/jobs")
    failed = page.locator(".gallery a", has=page.locator(".status", has_text="Failed"))
    failed.click()
    delete = page.get_by_role("button", name="Delete montage")
    delete.click()
    dialog = page.get_by_role("dialog", name="Delete this montage?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Keep it")).to_be_focused()
    # Read once it has risen into place: mid-animation its colours are still fading in.
    page.wait_for_function("d => d.getAnimations().length === 0", arg=dialog.element_handle())
    findings = accessibility_findings(page)
    assert findings == [], f"the open dialog: {findings}"
    for key in ("Tab", "Tab", "Tab", "Shift+Tab", "Shift+Tab", "Shift+Tab"):
        page.keyboard.press(key)
        assert page.evaluate("document.activeElement.closest('dialog') !== null"), "focus left the dialog"
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(delete).to_be_focused()
    delete.click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", name="My montages")).to_be_visible()
    expect(page.locator(".gallery .status", has_text="Failed")).to_have_count(0)


def ask_the_test(what):
    """Has the Rust test do `what` on the service's side, and waits until it has."""
    print(what, flush=True)
    assert sys.stdin.readline().strip() == "go", f"the test did not {what}"


def weekly_montage_published(page):
    """Last week's clips make a weekly montage; the player follows it to ready and publishes it."""
    ask_the_test("weekly-run")
    page.goto(f"{BASE}/#/weekly")
    card = page.locator("main li", has=page.get_by_role("button", name="Publish"))
    expect(card).to_have_count(1)
    card.get_by_role("link", name="Open").click()
    expect(page.locator(".status")).to_have_text("Ready", timeout=120_000)
    page.goto(f"{BASE}/#/weekly")
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Published: everyone can watch it.")).to_be_visible()
    expect(page.get_by_role("button", name="Make private")).to_be_visible()


def landing_plays_featured(browser, console):
    """Once an admin features it, a signed-out visitor's landing page plays it, muted, with its poster."""
    ask_the_test("feature")
    for size, viewport in (("390", PHONE), ("1280", DESKTOP)):
        visitor = browser.new_context(viewport=viewport)
        page = visitor.new_page()
        console.watch(page)
        page.goto(BASE + "/")
        showcase = page.get_by_role("region", name="Made here this week")
        video = showcase.locator("video")
        expect(video).to_have_count(1)
        assert video.evaluate("v => v.muted && v.loop && v.poster !== ''")
        try:
            page.wait_for_function("v => v.currentTime > 0.2", arg=video.element_handle(), timeout=20_000)
        except Exception:
            state = video.evaluate("v => ({src: v.currentSrc, ready: v.readyState, network: v.networkState, error: v.error && v.error.message, paused: v.paused, muted: v.muted, autoplay: v.autoplay})")
            raise AssertionError(f"the featured montage did not play: {state} {console.errors}")
        assert accessibility_findings(page) == [], f"the landing page with its showcase at {size} px"
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the landing page with its showcase is {overflow}px wider than {size} px"
        page.screenshot(path=ARTIFACTS / f"{size}-landing-featured.png", full_page=True)
        visitor.close()


def style_samples_play(page):
    """Each style shows the sample the service rendered of it (the worker renders the missing
    ones when it starts), playing muted on a loop; a sample is a real 10 s landscape montage."""
    deadline = time.monotonic() + 240
    samples = page.locator(".styles video.sample")
    page.goto(BASE + "/#/")
    while True:
        page.reload()  # the create page lists the samples once, as it opens
        expect(page.get_by_role("heading", name="Make a montage")).to_be_visible()
        if samples.count() == 4:
            break
        assert time.monotonic() < deadline, f"{samples.count()} of the 4 style samples were rendered"
        page.wait_for_timeout(2000)  # a worker renders them one by one: look again
    first = samples.first
    first.evaluate("""(v) => new Promise((done) => {
        const tick = () => (v.readyState >= 2 && v.currentTime > 0.5 ? done() : setTimeout(tick, 50)); tick(); })""")
    assert first.evaluate("v => v.muted && v.loop"), "a sample plays muted on a loop"
    saved = ARTIFACTS / "style-sample.mp4"
    saved.write_bytes(page.request.get(first.get_attribute("src")).body())
    probe = ffprobe(saved)
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (1920, 1080), video
    assert abs(float(probe["format"]["duration"]) - 10) < 0.1, probe["format"]["duration"]
    page.screenshot(path=ARTIFACTS / "1280-create-samples.png", full_page=True)


def main():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    console = Console()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                             args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        context = browser.new_context(accept_downloads=True)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=BASE)
        # A phone's share sheet, which desktop Chromium lacks: it keeps what it was given.
        context.add_init_script("Object.defineProperty(navigator, 'share', "
                                "{ value: async (data) => { window.sharedThroughSheet = data; } })")
        page = context.new_page()
        console.watch(page)
        sign_up(page)
        confirm_address(page)
        resumed_upload(page, console)
        failed_job(page)
        job_id = rendered_job(page)
        for fmt, size in (("landscape", (1920, 1080)), ("portrait", (1080, 1920))):
            played = play(page, fmt)
            saved = download(page, fmt, size)
            assert abs(played - saved) < 0.1, f"{fmt}: the player shows {played} s, the file holds {saved} s"
        assert console.errors == [], console.errors
        navigated_download(browser, context, job_id)
        share_page_for_friends(browser, page, console)
        history_shows_posters(page, job_id)
        delete_asks_first(page)
        weekly_montage_published(page)
        landing_plays_featured(browser, console)
        style_samples_play(page)
        every_page_loads(context, console, job_id)
        browser.close()
    print("browser flow passed", flush=True)


if __name__ == "__main__":
    main()
