#!/usr/bin/env python
"""Refresh the Simplified Chinese catalogue: makemessages, fill msgstr, compilemessages.

    .venv/bin/python scripts/update_translations.py           # refresh, fill, compile
    .venv/bin/python scripts/update_translations.py --check   # also fail if any msgid is untranslated

1. ``manage.py makemessages -l zh_Hans`` collects every ``{% translate %}``/``_()`` string of the
   project (not the virtualenv, var/, tests/ or bench/).
2. The MITI instrument's user-visible strings (``annotation.miti.user_visible_strings()``) are added:
   ``miti`` is a pure module with no gettext markers, but the pages show its strings through
   ``{% translate code.name %}`` and ``gettext(template)``, so the catalogue must hold them.
3. Each msgstr is filled from ``miti.ZH_TRANSLATIONS`` and ``TRANSLATIONS`` below (these win, so a
   corrected translation here reaches the catalogue); other existing translations are kept; fuzzy
   guesses from msgmerge are dropped (a wrong guess is worse than English).
4. ``manage.py compilemessages`` writes the .mo (committed, so a fresh clone needs no gettext).

Untranslated msgids are listed at the end: add them to ``TRANSLATIONS`` and run again. Locale
directory: ``locale/zh_Hans`` — Django looks translations up by ``to_locale("zh-hans") == "zh_Hans"``,
and the directory name is case-sensitive on Linux.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCALE = "zh_Hans"
PO_PATH = REPO / "locale" / LOCALE / "LC_MESSAGES" / "django.po"
IGNORE = [".venv", "var", "node_modules", "tests", "bench", "docs", "scripts", "static"]

# msgid -> Simplified Chinese. For a plural entry the value is the one Chinese form (nplurals=1).
TRANSLATIONS: dict[str, str] = {}  # filled below, kept at the end of the file for readability


# --------------------------------------------------------------------------------------------------
# A small PO reader/writer (enough for Django's catalogues; avoids a dependency for one script)
# --------------------------------------------------------------------------------------------------


@dataclass
class Entry:
    comments: list[str] = field(default_factory=list)  # "#..." lines, verbatim
    msgctxt: str | None = None
    msgid: str = ""
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=lambda: {0: ""})

    @property
    def fuzzy(self) -> bool:
        return any(c.startswith("#,") and "fuzzy" in c for c in self.comments)

    def unfuzzy(self) -> None:
        kept = []
        for c in self.comments:
            if c.startswith("#,"):
                flags = [f.strip() for f in c[2:].split(",") if f.strip() and f.strip() != "fuzzy"]
                if flags:
                    kept.append("#, " + ", ".join(flags))
            elif not c.startswith("#|"):  # previous-msgid lines only make sense on fuzzy entries
                kept.append(c)
        self.comments = kept


_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r"}


def _unquote(token: str) -> str:
    body = token.strip()
    assert body.startswith('"') and body.endswith('"'), body
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body[1:-1])


def _quote(text: str) -> str:
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t").replace("\r", "\\r")
    lines = text.split("\n")
    if len(lines) == 1:
        return f'"{text}"'
    parts = [line + "\\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    return '""\n' + "\n".join(f'"{p}"' for p in parts)


def read_po(path: Path) -> list[Entry]:
    entries: list[Entry] = []
    current = Entry()
    key: tuple[str, int] | None = None
    started = False

    def flush() -> None:
        nonlocal current, started, key
        if started:
            entries.append(current)
        current, started, key = Entry(), False, None

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.rstrip("\n")
        if not line.strip():
            flush()
            continue
        if line.startswith("#~"):
            continue  # obsolete: dropped
        if line.startswith("#"):
            if started and key is not None:
                flush()
            current.comments.append(line)
            continue
        started = True
        match = re.match(r'(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(".*")$', line)
        if match:
            name, index, token = match.group(1), match.group(2), match.group(3)
            value = _unquote(token)
            if name == "msgctxt":
                current.msgctxt, key = value, ("msgctxt", 0)
            elif name == "msgid":
                current.msgid, key = value, ("msgid", 0)
            elif name == "msgid_plural":
                current.msgid_plural, key = value, ("msgid_plural", 0)
            else:
                i = int(index) if index is not None else 0
                current.msgstr[i], key = value, ("msgstr", i)
        elif line.startswith('"') and key is not None:
            value = _unquote(line)
            field_name, i = key
            if field_name == "msgstr":
                current.msgstr[i] += value
            else:
                setattr(current, field_name, (getattr(current, field_name) or "") + value)
        else:
            raise ValueError(f"{path}: cannot read line {raw!r}")
    flush()
    return entries


def write_po(path: Path, entries: list[Entry]) -> None:
    out: list[str] = []
    for entry in entries:
        out += entry.comments
        if entry.msgctxt is not None:
            out.append("msgctxt " + _quote(entry.msgctxt))
        out.append("msgid " + _quote(entry.msgid))
        if entry.msgid_plural is not None:
            out.append("msgid_plural " + _quote(entry.msgid_plural))
            for i in sorted(entry.msgstr):
                out.append(f"msgstr[{i}] " + _quote(entry.msgstr[i]))
        else:
            out.append("msgstr " + _quote(entry.msgstr.get(0, "")))
        out.append("")
    path.write_text("\n".join(out), encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# The steps
# --------------------------------------------------------------------------------------------------


def manage(*args: str) -> None:
    env = {**os.environ, "SECRET_KEY": os.environ.get("SECRET_KEY") or "update-translations"}
    subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, check=True)


def fix_header(header: Entry) -> None:
    lines = header.msgstr[0].split("\n")
    wanted = {
        "Language": LOCALE,
        "Content-Type": "text/plain; charset=UTF-8",
        "Plural-Forms": "nplurals=1; plural=0;",
        "Project-Id-Version": "MI Platform",
    }
    seen = set()
    for i, line in enumerate(lines):
        name = line.split(":", 1)[0]
        if name in wanted:
            lines[i] = f"{name}: {wanted[name]}"
            seen.add(name)
    lines = [line for line in lines if line] + [f"{k}: {v}" for k, v in wanted.items() if k not in seen]
    header.msgstr[0] = "\n".join(lines) + "\n"
    header.unfuzzy()
    header.comments = [
        "# Simplified Chinese catalogue of MI Platform.",
        "# Generated: edit TRANSLATIONS in scripts/update_translations.py (or annotation/miti.py), then run it.",
        "#",
    ]


def fill(entries: list[Entry], table: dict[str, str]) -> list[str]:
    """Fill msgstr from ``table``; return the msgids still untranslated."""
    missing = []
    for entry in entries[1:]:
        chinese = table.get(entry.msgid)
        if chinese is None and "%%" in entry.msgid:
            # Template text has its % doubled in the msgid (and so in the msgstr) by makemessages.
            single = table.get(entry.msgid.replace("%%", "%"))
            chinese = single.replace("%", "%%") if single is not None else None
        if chinese is not None:
            entry.msgstr = {0: chinese}  # zh has one plural form
            entry.unfuzzy()
            continue
        if entry.fuzzy:
            entry.msgstr = {0: ""}
            entry.unfuzzy()
        if not entry.msgstr.get(0):
            missing.append(entry.msgid)
    return missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if any msgid is left untranslated")
    parser.add_argument("--no-compile", action="store_true")
    options = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from annotation import miti

    manage("makemessages", "-l", LOCALE, "--no-obsolete", *(f"--ignore={d}" for d in IGNORE))
    entries = read_po(PO_PATH)
    if not entries or entries[0].msgid != "":
        raise SystemExit(f"{PO_PATH}: no header entry")
    known = {(e.msgctxt, e.msgid) for e in entries}
    for text in miti.user_visible_strings():
        # `{% translate variable %}` looks a value up with each % doubled (Django's Variable.resolve),
        # gettext() in Python with the text as is: a string with % needs both entries.
        for variant in dict.fromkeys((text, text.replace("%", "%%"))):  # ordered: a stable .po diff
            if (None, variant) not in known:
                entries.append(Entry(comments=["#: annotation/miti.py (user_visible_strings)"], msgid=variant))
                known.add((None, variant))
    table = {**miti.ZH_TRANSLATIONS, **TRANSLATIONS}
    fix_header(entries[0])
    missing = fill(entries, table)
    write_po(PO_PATH, entries)
    if not options.no_compile:
        manage("compilemessages", "-l", LOCALE, *(f"--ignore={d}" for d in IGNORE))
    total = len(entries) - 1
    print(f"{PO_PATH.relative_to(REPO)}: {total - len(missing)} of {total} messages translated.")
    if missing:
        print("Untranslated (add them to TRANSLATIONS in scripts/update_translations.py):")
        for msgid in missing:
            print(f"  {msgid!r}")
    return 1 if missing and options.check else 0


# --------------------------------------------------------------------------------------------------
# Translations of the pages' own strings (the MITI instrument's come from annotation.miti)
# --------------------------------------------------------------------------------------------------

TRANSLATIONS.update({
    # --- forms, models, choices --------------------------------------------------------------------
    "Detect from content": "根据内容自动识别",
    "JSONL, CPsyCounD .txt or .zip, PsyDTCorpus / ShareGPT / Alpaca JSON, AnnoMI CSV.":
        "JSONL、CPsyCounD 的 .txt 或 .zip、PsyDTCorpus / ShareGPT / Alpaca JSON、AnnoMI CSV。",
    "As in the file (default unused)": "按文件中的设定（默认为未使用）",
    "Empty: all the rest.": "留空：其余全部。",
    "One id per line or comma-separated.": "每行一个 ID，或用逗号分隔。",
    "Chinese": "中文",
    "English": "英文",
    "The target behaviour coders rate change talk against (MITI requires it).":
        "编码员据以评定改变语句的目标行为（MITI 要求设定）。",
    "Coordinator": "协调员",
    "Coder": "编码员",
    "train": "训练集",
    "test": "测试集",
    "unused": "未使用",
    "Client": "来访者",
    "Counselor": "咨询师",
    "System": "系统",
    "Reference dialogues": "参考对话",
    "Generated by a model": "模型生成",
    "Imported coded transcripts": "导入的已编码文本",
    "Open": "进行中",
    "Closed": "已关闭",
    "Share of transcripts coded by two coders (0–1).": "由两名编码员编码的文本比例（0–1）。",
    "Not started": "未开始",
    "In progress": "进行中",
    "Submitted": "已提交",
    "Coding": "编码",
    "Consensus (adjudication)": "共识（裁定）",
    "Order in the coder's shuffled queue.": "在编码员随机排序队列中的位置。",
    "First characters, to recognise a token in lists.": "开头几个字符，用于在列表中识别令牌。",
    "Name": "名称",
    "Transcript sources": "文本来源",
    "Coders": "编码员",
    "Double-coded share (%)": "双人编码比例（%）",
    "Usually 20 (the MITI reliability sample); 100 double-codes every transcript.":
        "通常为 20（MITI 信度研究的抽样比例）；100 表示每份文本都由两人编码。",
    "Coders per double-coded transcript": "每份双人编码文本的编码员人数",
    "Seed": "随机种子",
    "Blank: drawn at random. The seed is recorded with the round.": "留空则随机抽取。种子会随编码轮次一并记录。",
    "Round name": "轮次名称",
    "AnnoMI-full.csv": "AnnoMI-full.csv",
    # --- messages from views ------------------------------------------------------------------------
    "%(n)d reference transcripts created from the test split.": "已从测试集创建 %(n)d 份参考文本。",
    "Unknown segmentation operation.": "未知的切分操作。",
    "A whole number was expected.": "此处需要一个整数。",
    "Put exactly one | where the new utterance should start, and change nothing else.":
        "请在新话语开始的位置放入且仅放入一个 |，不要改动其他内容。",
    "Round created with seed %(seed)d.": "编码轮次已创建，随机种子为 %(seed)d。",
    "Imported %(a)d codings of %(t)d transcripts by %(c)d annotators (%(m)d multi-coded).":
        "已导入 %(c)d 位标注者对 %(t)d 份文本的 %(a)d 份编码（其中 %(m)d 份为多人编码）。",
    "Reopened: the coder can edit %(code)s again.": "已重新开放：编码员可以再次编辑 %(code)s。",
    "Consensus submitted.": "共识编码已提交。",
    "Nothing to save.": "没有需要保存的内容。",
    "Study created.": "研究已创建。",
    "Member removed.": "成员已移除。",
    "Member saved.": "成员已保存。",
    "Imported %(n)d dialogues (%(r)d rounds) from %(f)s.": "已从 %(f)s 导入 %(n)d 段对话（%(r)d 轮）。",
    "%(d)d flagged as content duplicates.": "其中 %(d)d 段被标记为内容重复。",
    "Split done: %(c)s": "划分完成：%(c)s",
    "%(n)d dialogues moved.": "已移动 %(n)d 段对话。",
    "No such token.": "没有这个令牌。",
    "Token revoked.": "令牌已吊销。",
    "Too many failed sign-in attempts. Try again in %(minutes)d minute.": "登录失败次数过多，请 %(minutes)d 分钟后再试。",
    # --- coding workspace ---------------------------------------------------------------------------
    "Saving…": "正在保存…",
    "Saved": "已保存",
    "Not saved yet — %(n)s change(s) waiting; retrying": "尚未保存——%(n)s 处更改等待中，正在重试",
    "Cannot reach the server — %(n)s change(s) kept in this browser; retrying":
        "无法连接服务器——%(n)s 处更改已保存在本浏览器中，正在重试",
    "This assignment was changed in another tab or device — reload to see the latest version":
        "此任务已在其他标签页或设备上被修改——请重新加载以查看最新版本",
    "This assignment is submitted and read-only until a coordinator reopens it.":
        "此任务已提交，在协调员重新开放之前为只读。",
    "Your session has ended — log in again in another tab; your changes are kept here.":
        "您的会话已结束——请在另一个标签页重新登录；您的更改仍保留在此处。",
    "The server refused this change: %(msg)s": "服务器拒绝了此更改：%(msg)s",
    "%(n)s change(s) made in this browser were not saved, and the assignment has changed since. Apply them "
    "to the latest version, or discard them?":
        "在本浏览器中所做的 %(n)s 处更改尚未保存，而此任务此后已被修改。要将这些更改应用到最新版本，还是放弃它们？",
    "Apply my changes": "应用我的更改",
    "Discard them": "放弃这些更改",
    "Reload": "重新加载",
    "Wait until every change is saved before submitting.": "请等所有更改都保存后再提交。",
    "Submitted %(code)s. It is read-only now; thank you.": "已提交 %(code)s，现在为只读。谢谢！",
    "My coding queue": "我的编码队列",
    "Continue with %(code)s": "继续编码 %(code)s",
    "Everything in your queue is submitted. Thank you.": "您队列中的全部任务都已提交。谢谢！",
    "Transcript": "文本",
    "Study": "研究",
    "Round": "轮次",
    "Status": "状态",
    "Progress": "进度",
    "%(coded)s/%(total)s utterances": "%(coded)s/%(total)s 条话语",
    "%(n)s/%(m)s globals": "%(n)s/%(m)s 项总体评分",
    "View": "查看",
    "Continue": "继续",
    "Start": "开始",
    "Nothing to code yet. A coordinator assigns transcripts to you when a coding round opens.":
        "暂时没有需要编码的内容。编码轮次开启时，协调员会为您分配文本。",
    "Queue": "队列",
    "Hints": "提示",
    "Undo your last change": "撤销您的上一次更改",
    "Undo": "撤销",
    "Submitted — this coding is read-only until a coordinator reopens it.":
        "已提交——在协调员重新开放之前，此编码为只读。",
    "This coding round is closed — read-only.": "此编码轮次已关闭——只读。",
    "Change goal": "改变目标",
    "Counselor · volley %(n)s": "咨询师 · 话轮 %(n)s",
    "not coded": "未编码",
    "Volley counts": "话轮计数",
    "nothing counted yet": "尚无计数",
    "Global ratings": "总体评分",
    "Rate each scale 1–5 for the whole transcript. Start from 3 and move up or down: the 3 is a hint, "
    "nothing is stored until you choose.":
        "请针对整份文本为每个维度评 1–5 分。从 3 分开始上下调整：3 只是提示，在您选择之前不会保存任何数值。",
    "not rated": "未评分",
    "Start from 3 and move up or down": "从 3 分开始上下调整",
    "Global scales are not rated in this round.": "本轮次不评定总体评分。",
    "Submit coding": "提交编码",
    "Submitting needs a code or “No code” on every utterance and all four globals. Afterwards the coding "
    "is read-only.":
        "提交前，每条话语都需要一个编码或“不编码”，并且四项总体评分都需填写。提交后编码为只读。",
    "Codes": "编码",
    "Keys": "快捷键",
    "next utterance, then the globals": "下一条话语，然后是总体评分",
    "previous": "上一条",
    "rate the focused global": "为当前选中的总体评分打分",
    "clear the focused item": "清除当前选中的项目",
    "undo your last change": "撤销您的上一次更改",
    "hints": "提示",
    "Move to the next item after coding": "编码后自动移到下一项",
    "When in doubt": "拿不准时",
    "Per-volley rules": "每个话轮的计数规则",
    "Code definitions": "编码定义",
    # --- studies, dialogues, imports, members -------------------------------------------------------
    "Dialogues": "对话",
    "all": "全部",
    "Id": "ID",
    "Source": "来源",
    "Topic": "主题",
    "Rounds": "轮数",
    "Duplicate of": "重复于",
    "Import dialogues": "导入对话",
    "Import": "导入",
    "An import is all or nothing: if any record is invalid, nothing is saved and the message names the "
    "file, record and field.":
        "导入要么全部成功，要么全部不保存：只要有一条记录无效，就不会保存任何内容，错误信息会指出文件、记录和字段。",
    "Members": "成员",
    "User": "用户",
    "Role": "角色",
    "Remove": "移除",
    "Add or change a member": "添加或修改成员",
    "Save": "保存",
    "Splits": "数据集划分",
    "Train / test split": "训练集 / 测试集划分",
    "Random split": "随机划分",
    "By a list of ids": "按 ID 列表",
    "Move": "移动",
    "Counts": "数量",
    "Content duplicates": "内容重复",
    "Last split": "最近一次划分",
    "Recent imports": "最近的导入",
    "File": "文件",
    "Format": "格式",
    "Duplicates": "重复",
    "No imports yet.": "尚无导入。",
    "Open my coding queue": "打开我的编码队列",
    "New study": "新建研究",
    "Create": "创建",
    "Studies": "研究",
    "Language": "语言",
    "Your role": "您的角色",
    "You are not a member of any study yet.": "您还不是任何研究的成员。",
    "Admin": "管理后台",
    "Log out": "退出登录",
    "Log in": "登录",
    "Go": "前往",
    "Logged out": "已退出登录",
    "Log in again": "重新登录",
    "Username": "用户名",
    "Password": "密码",
    "Password changed": "密码已修改",
    "Back to your account": "返回您的账户",
    "Your account": "您的账户",
    "Change password": "修改密码",
    "API tokens": "API 令牌",
    "Your new token (shown once, copy it now):": "您的新令牌（仅显示一次，请立即复制）：",
    "Starts with": "开头为",
    "Created": "创建时间",
    "Last used": "最近使用",
    "Revoke": "吊销",
    "No tokens.": "没有令牌。",
    "New token name": "新令牌名称",
    "e.g. cluster job": "例如：集群任务",
    "Create token": "创建令牌",
    "Use it as": "使用方式",
    "API documentation": "API 文档",
    # --- coordinator: transcripts, rounds, adjudication --------------------------------------------
    "Adjudication": "裁定",
    "Dialogue": "对话",
    "%(n)s utterance with disagreement": "%(n)s 条话语存在分歧",
    "%(n)s global with disagreement": "%(n)s 项总体评分存在分歧",
    "Start consensus coding": "开始共识编码",
    "Codes and globals on which all coders agree are filled in for you.": "所有编码员一致的编码和总体评分已为您预先填好。",
    "Consensus": "共识",
    "Version": "版本",
    "View or reopen": "查看或重新开放",
    "Globals": "总体评分",
    "Scale": "维度",
    "Utterances": "话语",
    "Utterance": "话语",
    "Consensus code": "共识编码",
    "Submit consensus": "提交共识编码",
    "Every utterance needs a code or “no code”, and all four globals must be set.":
        "每条话语都需要一个编码或“不编码”，并且四项总体评分都需填写。",
    "Every utterance needs a code or “no code”.": "每条话语都需要一个编码或“不编码”。",
    "Transcripts coded by two or more coders. Once at least two codings are submitted, compare them and "
    "record a consensus; evaluation uses a submitted consensus as the final coding.":
        "由两名或以上编码员编码的文本。至少两份编码提交后，即可对比并记录共识编码；评估时以已提交的共识编码作为最终编码。",
    "Blind code": "盲码",
    "Utterance disagreements": "话语分歧",
    "Global disagreements": "总体评分分歧",
    "not started": "未开始",
    "waiting for submissions": "等待提交",
    "No transcript in this round is coded by two coders.": "本轮次中没有由两名编码员编码的文本。",
    "Import AnnoMI expert labels": "导入 AnnoMI 专家标注",
    "Coding rounds": "编码轮次",
    "Creates one coder per annotator_id and one submitted coding per transcript and annotator. Mapping: "
    "reflection simple → SR, complex → CR, question → Q, therapist input (information) → GI, everything "
    "else → no code. AnnoMI has no globals: they show as not rated.":
        "为每个 annotator_id 创建一名编码员，并为每份文本的每位标注者创建一份已提交的编码。映射："
        "简单反映 → SR，复杂反映 → CR，提问 → Q，咨询师输入（信息）→ GI，其余 → 不编码。"
        "AnnoMI 没有总体评分：显示为未评分。",
    "%(coded)s of %(units)s utterances coded": "已编码 %(coded)s / %(units)s 条话语",
    "Reopen for editing": "重新开放以便编辑",
    "The coder can change the coding again; open pages of it get a conflict message and must reload.":
        "编码员可以再次修改该编码；已打开的页面会收到冲突提示，需要重新加载。",
    "not set": "未填写",
    "Summary scores": "汇总分数",
    "History": "修改记录",
    "When": "时间",
    "Who": "操作人",
    "Action": "操作",
    "Target": "对象",
    "Old": "原值",
    "New": "新值",
    "No changes yet.": "尚无修改。",
    "Double-coded share": "双人编码比例",
    "Sources": "来源",
    "Globals not rated": "未评定总体评分",
    "%(done)s of %(total)s codings submitted": "已提交 %(done)s / %(total)s 份编码",
    "Assigned": "已分配",
    "Assignments": "任务分配",
    "Updated": "更新时间",
    "consensus": "共识",
    "New coding round": "新建编码轮次",
    "Create round": "创建轮次",
    "Every transcript of the chosen sources is assigned; the double-coded share is drawn at random and each "
    "coder's queue is shuffled, both from the seed. Opening the round fixes the segmentation of its "
    "transcripts.":
        "所选来源的每份文本都会被分配；双人编码的部分随机抽取，每位编码员的队列随机排序，二者都由随机种子决定。"
        "轮次开启后，其中文本的话语切分即被固定。",
    "Transcripts": "文本",
    "no globals": "无总体评分",
    "No coding rounds yet.": "尚无编码轮次。",
    "generation run": "生成任务",
    "Volleys": "话轮",
    "Segmentation": "话语切分",
    "fixed": "已固定",
    "adjustable": "可调整",
    "No transcripts yet.": "尚无文本。",
    "Previous": "上一页",
    "Next": "下一页",
    "Segmentation is fixed: a coding round with this transcript is open.": "话语切分已固定：包含此文本的编码轮次已开启。",
    "Segmentation can be adjusted until a coding round opens: merge an utterance with the next, or split one "
    "by putting a | where the new utterance starts.":
        "在编码轮次开启之前可以调整话语切分：将一条话语与下一条合并，或在新话语开始处放入 | 将其拆分。",
    "volley": "话轮",
    "Merge with the next utterance": "与下一条话语合并",
    "Merge ↓": "合并 ↓",
    "Text with a | at the split point": "在拆分处带有 | 的文本",
    "Split at |": "在 | 处拆分",
    "Split": "拆分",
    "This transcript has no counselor volleys.": "此文本没有咨询师话轮。",
    "Source labels (model names, runs) are shown to coordinators only; coders see blind codes.":
        "来源标签（模型名称、生成任务）仅对协调员显示；编码员只能看到盲码。",
    "Kind": "类型",
    "Segmentation fixed": "切分已固定",
    "The test split has %(n)s dialogue.": "测试集有 %(n)s 段对话。",
    "Reference transcripts are built round by round; dialogues that already have one are skipped.":
        "参考文本按轮构建；已有参考文本的对话会被跳过。",
    "Create reference transcripts from the test split": "从测试集创建参考文本",
    # --- evaluation ---------------------------------------------------------------------------------
    "Queued": "排队中",
    "Running": "运行中",
    "Done": "已完成",
    "Failed": "失败",
    "Scoring run %(run)s was queued; reload in a moment.": "已将生成任务 %(run)s 加入评分队列，请稍后刷新。",
    "Export queued.": "导出任务已排队。",
    "Download": "下载",
    "Base model": "基础模型",
    "Run": "生成任务",
    "fine-tuned": "微调",
    "not computed yet": "尚未计算",
    "Recompute": "重新计算",
    "Compute": "计算",
    "No generation runs in this study yet.": "本研究还没有生成任务。",
    "Scores ×100, mean over all rounds pooled (not corpus BLEU). Chinese: BLEU-4 on characters, ROUGE on "
    "jieba words (as LLaMA-Factory); English: rouge-score tokens.":
        "分数 ×100，为所有轮次合并后的平均值（不是语料级 BLEU）。中文：BLEU-4 按字计算，ROUGE 按 jieba 分词计算"
        "（与 LLaMA-Factory 相同）；英文：rouge-score 分词。",
    "Results sections": "结果各部分",
    "Coding round": "编码轮次",
    "All rounds (latest coding per coder)": "全部轮次（每位编码员取最新编码）",
    "Show": "显示",
    "Published reference bands": "已发表的参考区间",
    "Cicchetti (1994): below .40 poor, .40–.59 fair, .60–.74 good, .75 and above excellent.":
        "Cicchetti（1994）：低于 .40 为差，.40–.59 为一般，.60–.74 为良好，.75 及以上为优秀。",
    "Score": "分数",
    "n transcripts": "文本数",
    "Band": "区间",
    "alpha (interval)": "alpha（等距）",
    "Fair / Good": "尚可 / 良好",
    "%(n)s transcript": "%(n)s 份文本",
    "meets Fair": "达到尚可",
    "No scores.": "没有分数。",
    "Utterance codes": "话语编码",
    "Value": "数值",
    "Krippendorff's alpha (nominal; “no code” a category)": "Krippendorff's alpha（名义；“不编码”作为一个类别）",
    "Fleiss' kappa": "Fleiss' kappa",
    "Cohen's kappa": "Cohen's kappa",
    "Results": "结果",
    "Coding progress": "编码进度",
    "Submitted / assignments": "已提交 / 任务数",
    "Consensus submitted": "共识已提交",
    "Total": "合计",
    "MITI summary scores per source": "各来源的 MITI 汇总分数",
    "MITI summary scores per source, with the Fair and Good thresholds": "各来源的 MITI 汇总分数（含尚可与良好阈值）",
    "All scores, per coder and per transcript": "全部分数（按编码员和文本）",
    "No submitted codings yet: scores appear when coders submit.": "尚无已提交的编码：编码员提交后才会显示分数。",
    "Reliability between coders": "编码员间信度",
    "%(n)s transcript with two or more submitted codings.": "%(n)s 份文本有两份或以上已提交的编码。",
    "Not enough data: reliability needs transcripts coded by at least two coders.":
        "数据不足：计算信度需要至少由两名编码员编码的文本。",
    "Per-code agreement and coder drift": "各编码一致性与编码员漂移",
    "Automatic metrics": "自动指标",
    "Printable MITI report": "可打印的 MITI 报告",
    "Exports (CSV, XLSX, PDF)": "导出（CSV、XLSX、PDF）",
    "Export": "导出",
    "Exports": "导出",
    "What": "内容",
    "report": "报告",
    "All rounds": "全部轮次",
    "Codes: one row per utterance per coder (coder id, blind code, volley and utterance number, text, code) "
    "with the source and model. Reports are PDF or HTML; tables are CSV or XLSX.":
        "编码：每位编码员的每条话语一行（编码员 ID、盲码、话轮与话语编号、文本、编码），并附来源和模型。"
        "报告为 PDF 或 HTML；表格为 CSV 或 XLSX。",
    "Printable MITI report (HTML, print it or save as PDF from the browser)":
        "可打印的 MITI 报告（HTML，可在浏览器中打印或另存为 PDF）",
    "Requested": "请求时间",
    "round": "轮次",
    "rows": "行",
    "Refresh": "刷新",
    "Automatic metrics per model": "各模型的自动指标",
    "Each generated counselor reply is scored against the gold reply of the same round. Runs are scored "
    "automatically when they finish; “Compute” scores a run again on demand.":
        "每条生成的咨询师回复都与同一轮的标准回复进行比较评分。生成任务完成后会自动评分；“计算”可按需重新评分。",
    "MITI results per source": "各来源的 MITI 结果",
    "MITI behaviour totals per source": "各来源的 MITI 行为总数",
    "Global ratings per source": "各来源的总体评分",
    "Behaviour counts per source (per-volley tallies)": "各来源的行为计数（按话轮计数规则）",
    "Per coder": "按编码员",
    "Each coder's own submitted codings (consensus codings excluded).": "每位编码员自己提交的编码（不含共识编码）。",
    "Codings": "编码数",
    "Per coding": "按编码",
    "No submitted codings yet.": "尚无已提交的编码。",
    "ICC raters": "ICC 评分者数",
    "ICC(2,1) and ICC(2,k): two-way random effects, absolute agreement (Shrout & Fleiss), 95 %% CI; "
    "Krippendorff's alpha at interval level for globals and counts (the ratios %%CR and R:Q get ICC only) "
    "and nominal for utterance codes (each utterance a unit, “no code” a category, missing = not coded). "
    "“not enough data”: fewer than 2 usable units; “n/a”: the statistic is undefined (no variation).":
        "ICC(2,1) 与 ICC(2,k)：双向随机效应、绝对一致性（Shrout & Fleiss），95 %% 置信区间；"
        "Krippendorff's alpha 对总体评分和计数采用等距水平（比率 %%CR 与 R:Q 只计算 ICC），对话语编码采用名义水平"
        "（每条话语为一个单位，“不编码”为一个类别，缺失 = 未编码）。“数据不足”：可用单位少于 2 个；"
        "“无法计算”：该统计量无定义（没有变异）。",
    "Scores per transcript": "各文本的分数",
    "Per code (this code vs any other)": "按编码（该编码 vs 其他任何编码）",
    "Code": "编码",
    "Utterances with the code": "带有该编码的话语",
    "Coder drift": "编码员漂移",
    "Each coder's mean difference from the other coders of the same transcripts (positive: scores higher), "
    "overall and over the earlier and later half of their double-coded transcripts.":
        "每位编码员与同一文本其他编码员的平均差异（正值表示评分更高），包括总体以及其双人编码文本的前半部分和后半部分。",
    "Mean difference": "平均差异",
    "Earlier half": "前半部分",
    "Later half": "后半部分",
    # --- inference ----------------------------------------------------------------------------------
    "Model": "模型",
    "Chunk size": "分块大小",
    "Rounds per task: one backend batch, written in one transaction.": "每个任务的轮数：一次后端批处理，在一个事务中写入。",
    "OpenAI-compatible server": "OpenAI 兼容服务器",
    "Local path or hub id of the base model.": "基础模型的本地路径或模型库 ID。",
    "Optional LoRA adapter folder.": "可选的 LoRA 适配器文件夹。",
    "Optional Jinja chat template override.": "可选的 Jinja 对话模板（覆盖默认）。",
    "For the openai backend.": "用于 openai 后端。",
    "Name of the environment variable holding the API key.": "保存 API 密钥的环境变量名称。",
    "For a fine-tuned model: the registered base model it was trained from.": "对于微调模型：其训练所基于的已注册基础模型。",
    "Cancelled": "已取消",
    "Finished with failed items": "已完成，但有失败项",
    "Snapshot of the model's parameters at start.": "开始时模型参数的快照。",
    "TranscriptSource created on finish.": "完成时创建的文本来源。",
    "Pending": "等待中",
    "Claimed": "已领取",
    "MI-style rewrite": "MI 风格改写",
    "Quality judge": "质量评审",
    "How the source dialogues were picked.": "源对话的挑选方式。",
    "Appended to the source id: <source>-<suffix>.": "附加在源 ID 之后：<source>-<suffix>。",
    "Accepted": "已接受",
    "Rejected": "已拒绝",
    "Stopped": "已停止",
    "Name the fine-tuned model is registered under.": "微调模型注册时使用的名称。",
    "Train only on derived (e.g. MI-style rewritten) dialogues of the split.": "只使用该划分中的派生对话（如 MI 风格改写）进行训练。",
    "Train only on dialogues whose judge total is at least this.": "只使用评审总分不低于此值的对话进行训练。",
    "Model registered.": "模型已注册。",
    "This test result belongs to another model.": "此测试结果属于另一个模型。",
    "Generation started.": "生成已开始。",
    "Run cancelled; chunks already running finish their rounds.": "生成任务已取消；正在运行的分块会完成其轮次。",
    "The run has already finished.": "该生成任务已经完成。",
    "%(count)d round(s) sent to the workers.": "已将 %(count)d 轮发送给工作进程。",
    "Round sent again.": "该轮已重新发送。",
    "Models": "模型",
    "Backend": "后端",
    "LoRA adapter": "LoRA 适配器",
    "Server": "服务器",
    "Chat template": "对话模板",
    "override set": "已设置覆盖",
    "the tokenizer's own": "使用分词器自带的",
    "System prompt": "系统提示词",
    "Decoding": "解码参数",
    "Context length": "上下文长度",
    "the model's own": "使用模型自带的",
    "Fine-tuned": "微调",
    "from": "来自",
    "Checks": "检查",
    "No problems found without loading the model.": "在不加载模型的情况下未发现问题。",
    "Test this model": "测试此模型",
    "Loads the tokenizer (and the server or weights) on a worker of the model's queue and generates a few "
    "tokens.":
        "在该模型队列的工作进程上加载分词器（以及服务器或权重）并生成少量词元。",
    "Testing on a worker…": "正在工作进程上测试…",
    "Ready: the model loaded and generated a reply.": "就绪：模型已加载并生成了回复。",
    "Problems": "问题",
    "Runs": "生成任务",
    "Started": "开始时间",
    "No runs in your studies.": "您的研究中没有生成任务。",
    "Register a model": "注册模型",
    "Paths are checked now: the base model folder (or a hub id), the LoRA adapter folder and the "
    "tokenizer's chat template. Use “Test this model” afterwards to load it and generate once.":
        "现在会检查路径：基础模型文件夹（或模型库 ID）、LoRA 适配器文件夹以及分词器的对话模板。"
        "之后可用“测试此模型”加载模型并生成一次。",
    "Register": "注册",
    "Model registry": "模型注册表",
    "Adapter": "适配器",
    "none found": "未找到",
    "No models registered yet.": "尚未注册任何模型。",
    "Generation": "生成",
    "chunk size": "分块大小",
    "started by": "发起人",
    "done": "已完成",
    "failed": "失败",
    "tokens/s": "词元/秒",
    "ETA": "预计剩余时间",
    "Transcripts for coding were created from this run.": "已根据此生成任务创建了用于编码的文本。",
    "Failed rounds": "失败的轮次",
    "Attempts": "尝试次数",
    "Error": "错误",
    "Retry": "重试",
    "Cancel": "取消",
    "Resume": "继续",
    "Retry failed rounds": "重试失败的轮次",
    "Prompt / completion tokens": "提示 / 生成词元数",
    "Latency ms": "延迟（毫秒）",
    "Dropped pairs": "丢弃的对话对",
    "Response": "回复",
    "No rounds.": "没有轮次。",
    "next": "下一页",
    "Start a run": "开始生成任务",
    "Start a generation run with the selected models…": "用所选模型开始生成任务…",
    "Start a generation run": "开始生成任务",
    "Home": "首页",
    "One generation run per model, over every round of the chosen split. The chunks are sent to the model's "
    "queue; follow them on the study's Generation page.":
        "每个模型一个生成任务，覆盖所选数据集划分的每一轮。各分块会发送到该模型的队列；请在研究的“生成”页面跟进。",
    "One response per round of every dialogue in the split (the model sees the gold history). The run "
    "becomes a set of blinded transcripts for coding when it is done.":
        "为该划分中每段对话的每一轮生成一条回复（模型看到的是标准对话历史）。完成后，该生成任务会成为一组供编码的盲化文本。",
    "No runs yet.": "尚无生成任务。",
    # --- MI-LLM recipe: MI-style rewriting, LLM judge, training data export, LoRA fine-tuning ----------
    "Rewrite with model": "改写所用模型",
    "Prompt version": "提示词版本",
    "Empty: the shipped MI rewrite prompt (mi-rewrite v1).": "留空：使用内置的 MI 改写提示词（mi-rewrite v1）。",
    "Dialogues of split": "数据集划分中的对话",
    "…or these dialogue ids": "…或以下对话 ID",
    "One per line or comma-separated; with a split, only ids in that split.":
        "每行一个或用逗号分隔；若同时选择了数据集划分，则只取该划分中的 ID。",
    "Put the rewrites in split": "改写结果放入的数据集划分",
    "Quality screen with judge model": "用评审模型进行质量筛查",
    "Optional: scores each accepted rewrite on the CPsyCoun rubric (0–9).":
        "可选：按 CPsyCoun 评分标准（0–9）为每条被接受的改写评分。",
    "Judge prompt": "评审提示词",
    "Must contain {dialogue}; a rewrite prompt may also use {rounds} and {turns}.":
        "必须包含 {dialogue}；改写提示词还可以使用 {rounds} 和 {turns}。",
    "What changed": "修改说明",
    "Dataset name in dataset_info.json.": "dataset_info.json 中的数据集名称。",
    "Only derived (rewritten) dialogues": "仅限派生（改写）对话",
    "Minimum judge total": "评审总分下限",
    "Empty: <base>-lora.": "留空：<base>-lora。",
    "Empty: the base model's system prompt. The fine-tuned model is registered with it.":
        "留空：使用基础模型的系统提示词。微调模型注册时会带上该系统提示词。",
    "cpu only for tiny models.": "cpu 仅适用于很小的模型。",
    "'all' = every linear layer.": "'all' = 所有线性层。",
    "Optional cap on optimizer steps.": "可选：优化器步数上限。",
    "Transformation started.": "改写任务已开始。",
    "Job cancelled; chunks already running finish their dialogues.": "任务已取消；正在运行的分块会完成其对话。",
    "The job has already finished.": "该任务已经完成。",
    "%(count)d dialogue(s) sent again.": "已重新发送 %(count)d 段对话。",
    "Saved %(prompt)s.": "已保存 %(prompt)s。",
    "Fine-tuning queued.": "微调任务已排队。",
    "Stop requested: training stops after the current step.": "已请求停止：训练将在当前步骤结束后停止。",
    "MI-LLM recipe": "MI-LLM 流程",
    "Per-code agreement (this code vs any other)": "各编码一致性（该编码 vs 其他任何编码）",
    "Provenance (base model, training data, fine-tuning job)": "来源信息（基础模型、训练数据、微调任务）",
    "Export training data": "导出训练数据",
    "A zip with the split in LLaMA-Factory's ShareGPT format (one record per dialogue), in Alpaca format with "
    "history (one record per round) and the matching dataset_info.json.":
        "一个 zip 压缩包，内含该数据集划分的 LLaMA-Factory ShareGPT 格式（每段对话一条记录）、带历史的 Alpaca 格式"
        "（每轮一条记录）以及对应的 dataset_info.json。",
    "Fine-tuning": "微调",
    "split": "数据集划分",
    "derived only": "仅派生对话",
    "judge total": "评审总分",
    "dialogues": "段对话",
    "queue": "队列",
    "queued by": "提交人",
    "step": "步骤",
    "loss": "损失",
    "Registered as": "已注册为",
    "Stop": "停止",
    "Log": "日志",
    "Nothing logged yet.": "尚无日志。",
    "Hyperparameters": "超参数",
    "New LoRA fine-tuning": "新建 LoRA 微调",
    "Supervised fine-tuning with transformers and peft on the split's dialogues, loss on the counselor turns "
    "only, with the model's chat template. The adapter is registered as a new model linked to its base model "
    "and training data.":
        "使用 transformers 和 peft 在该数据集划分的对话上进行有监督微调，只在咨询师发言上计算损失，并使用模型的对话模板。"
        "训练得到的适配器会注册为一个新模型，并关联其基础模型和训练数据。",
    "Rewrite dialogues MI-style with a model, screen them with an LLM judge, export training data for "
    "LLaMA-Factory, or fine-tune a LoRA adapter here.":
        "在这里可以用模型将对话改写为 MI 风格、用 LLM 评审进行筛查、导出 LLaMA-Factory 训练数据，或微调 LoRA 适配器。",
    "New MI-style transformation": "新建 MI 风格改写",
    "Prompts": "提示词",
    "Transformations": "改写任务",
    "Job": "任务",
    "Prompt": "提示词",
    "No transformations yet.": "尚无改写任务。",
    "Result": "结果",
    "No fine-tuning jobs yet.": "尚无微调任务。",
    "Provenance": "来源信息",
    "Provenance of": "来源信息：",
    "Trained by": "训练来源",
    "fine-tuning job": "微调任务",
    "This model was registered by hand; no provenance was recorded.": "此模型为手动注册，没有记录来源信息。",
    "New version of %(name)s (from v%(version)s)": "%(name)s 的新版本（基于 v%(version)s）",
    "New prompt": "新建提示词",
    "Save as new version": "另存为新版本",
    "Prompts are versioned: editing one saves a new version, and every rewritten dialogue and judge score "
    "names the version that made it.":
        "提示词有版本管理：编辑后会保存为新版本，每段改写对话和每个评审分数都会注明生成它的提示词版本。",
    "Note": "备注",
    "edit as new version": "编辑为新版本",
    "Transformation": "改写任务",
    "New dialogues": "新对话",
    "in split": "放入数据集划分",
    "judge": "评审",
    "accepted": "已接受",
    "rejected": "已拒绝",
    "to do": "待处理",
    "Why outputs were not kept": "输出未被保留的原因",
    "Retry rejected and failed": "重试已拒绝和失败的项",
    "Judge total at least": "评审总分不低于",
    "Filter": "筛选",
    "Result or reason": "结果或原因",
    "comprehensiveness / professionalism / authenticity / safety": "全面性 / 专业性 / 真实性 / 安全性",
    "Judge (C/P/A/S = total)": "评审（全/专/真/安 = 总分）",
    "compare": "对比",
    "No dialogues match.": "没有符合条件的对话。",
    "Each chosen dialogue is sent to the model with the prompt; an output is kept as a new dialogue (linked "
    "to its source, the prompt version and the model) only if it parses, starts with the client, alternates "
    "roles, keeps every client turn and the number of rounds, and has no empty counselor turn. Other outputs "
    "are kept with the reason and can be retried.":
        "每段选中的对话会连同提示词一起发送给模型；只有当输出可以解析、以来访者开头、双方角色交替、保留了来访者的每一次发言"
        "和轮数、且没有空的咨询师发言时，才会作为新对话保存（并关联其源对话、提示词版本和模型）。其他输出会连同原因一起保留，"
        "并可重试。",
    "See or edit the prompts": "查看或编辑提示词",
    "attempts": "尝试次数",
    "tokens": "词元",
    "Judge": "评审",
    "comprehensiveness": "全面性",
    "professionalism": "专业性",
    "authenticity": "真实性",
    "safety": "安全性",
    "total": "总分",
    "Original counselor": "原咨询师回复",
    "MI-style counselor": "MI 风格咨询师回复",
    "The model's output": "模型的输出",
    "Retry this dialogue": "重试此对话",
})


if __name__ == "__main__":
    raise SystemExit(main())
