"""Build small RSS 2.0, Atom 1.0 and RSS 1.0 documents from plain dicts for tests."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape


def story(
    slug: str, title: str, summary: str = "", hours_ago: float = 1.0, host: str = "news.example"
) -> dict[str, object]:
    published = datetime.fromtimestamp(datetime.now(UTC).timestamp() - hours_ago * 3600, UTC)
    return {
        "id": f"https://{host}/{slug}",
        "link": f"https://{host}/{slug}",
        "title": title,
        "summary": summary or f"<p>{title}. More details follow.</p>",
        "published": published,
    }


def rss20(items: list[dict[str, object]], title: str = "Test RSS") -> str:
    entries = "".join(
        f"<item><title>{escape(str(i['title']))}</title><link>{escape(str(i['link']))}</link>"
        f'<guid isPermaLink="false">{escape(str(i["id"]))}</guid>'
        f"<description>{escape(str(i['summary']))}</description>"
        + (
            f"<pubDate>{format_datetime(i['published'])}</pubDate>"  # type: ignore[arg-type]
            if i.get("published")
            else ""
        )
        + "</item>"
        for i in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>https://news.example/</link>"
        f"<description>t</description><language>en</language>{entries}</channel></rss>"
    )


def atom10(items: list[dict[str, object]], title: str = "Test Atom") -> str:
    entries = "".join(
        f"<entry><title>{escape(str(i['title']))}</title>"
        f'<link rel="alternate" href="{escape(str(i["link"]))}"/>'
        f"<id>{escape(str(i['id']))}</id>"
        f"<updated>{i['published'].isoformat()}</updated>"  # type: ignore[attr-defined]
        f'<summary type="html">{escape(str(i["summary"]))}</summary></entry>'
        for i in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"'
        f' xml:lang="en"><title>{escape(title)}</title><id>urn:test:atom</id>'
        f"<updated>2026-01-01T00:00:00Z</updated>{entries}</feed>"
    )


def rss10(items: list[dict[str, object]], title: str = "Test RDF") -> str:
    seq = "".join(f'<rdf:li rdf:resource="{escape(str(i["link"]))}"/>' for i in items)
    entries = "".join(
        f'<item rdf:about="{escape(str(i["link"]))}"><title>{escape(str(i["title"]))}</title>'
        f"<link>{escape(str(i['link']))}</link>"
        f"<description>{escape(str(i['summary']))}</description>"
        f"<dc:date>{i['published'].isoformat()}</dc:date></item>"  # type: ignore[attr-defined]
        for i in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        ' xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<channel rdf:about="https://news.example/"><title>{escape(title)}</title>'
        "<link>https://news.example/</link><description>t</description>"
        f"<items><rdf:Seq>{seq}</rdf:Seq></items></channel>{entries}</rdf:RDF>"
    )
