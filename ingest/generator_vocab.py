"""Words and phrases of the synthetic report generator (kept apart from its grammar).

Entity surfaces follow the annotation guideline's lists and the coronary-tree contract's
spellings (`coronary-tree.md`): every BodyPart and Location spelling written here is one the
contract names, so the records made from the sample map every one of them (typos are only ever
made in lesion words and in text without entities, never in a vessel or segment name).
Phrases that carry no entity never contain a vessel name or a negation cue, so the synthetic
annotations are never inconsistent with themselves (an unmarked 右冠状动脉 in one sentence and a
marked one in the next would teach the model noise).

Relation names are not here: the schema names each relation by its argument types.
"""

from __future__ import annotations

from dataclasses import dataclass

# The entity types the grammar produces; generate_corpus checks them against the schema.
BODY_PART, LOCATION, DEGREE, QUANTIFIER, NEGATION = (
    "BodyPart", "Location", "Degree", "Quantifier", "Negation",
)
# (Arg1 type, Arg2 type) of every relation the grammar makes: the schema must name one each.
RELATED_TYPES = ((DEGREE, NEGATION), (DEGREE, BODY_PART), (BODY_PART, LOCATION),
                 (DEGREE, QUANTIFIER))


@dataclass(frozen=True)
class Vessel:
    """A vessel as reports name it: Chinese spellings, English abbreviations (may be none)."""

    chinese: tuple[str, ...]
    english: tuple[str, ...] = ()
    territory: str | None = None  # LAD, LCX or RCA (for 单支/双支/三支病变); None for LM


def _branch(chinese: str, english: str | None, territory: str) -> Vessel:
    return Vessel((chinese,), (english,) if english else (), territory)


# Main vessels in report order with their side branches.
LEFT_MAIN = Vessel(("左主干", "左主干", "左冠状动脉主干"), ("LM",))
MAIN_VESSELS: tuple[tuple[Vessel, tuple[Vessel, ...]], ...] = (
    (LEFT_MAIN, ()),
    (Vessel(("前降支", "左前降支"), ("LAD",), "LAD"),
     (_branch("第一对角支", "D1", "LAD"), _branch("第二对角支", "D2", "LAD"),
      _branch("对角支", None, "LAD"), _branch("间隔支", None, "LAD"))),
    (Vessel(("回旋支", "左回旋支"), ("LCX", "LCX", "LCx"), "LCX"),
     (_branch("钝缘支", None, "LCX"), _branch("第一钝缘支", "OM1", "LCX"),
      _branch("第二钝缘支", "OM2", "LCX"))),
    (Vessel(("右冠状动脉", "右冠", "右冠脉"), ("RCA",), "RCA"),
     (_branch("后降支", "PDA", "RCA"), Vessel(("左室后支",), ("PLV", "PL", "PLB"), "RCA"),
      _branch("后侧支", None, "RCA"), _branch("锐缘支", None, "RCA"),
      _branch("圆锥支", None, "RCA"))),
)
RAMUS = Vessel(("中间支",), ("RI",), "LCX")  # the ramus intermediate, when a patient has one
# The left and right systems as a whole, used as headings of their blocks.
LEFT_SYSTEM = Vessel(("左冠状动脉", "左冠"))
RIGHT_SYSTEM = Vessel(("右冠状动脉", "右冠"))

# Locations by segment kind; a report writes 近段/远段 or 近端/远端 by habit.
LOCATIONS = ("开口", "近段", "中段", "远段", "近中段", "中远段", "分叉处", "全程")
LOCATION_WEIGHTS = (12, 22, 22, 16, 8, 8, 4, 4)
ENDS_HABIT = {"近段": ("近端",), "远段": ("远端", "远端", "末端"), "开口": ("开口处", "开口")}
LEFT_MAIN_LOCATIONS = ("开口", "体部", "末端", "开口处")
LOCATION_PAIRS = (("开口", "近段"), ("近段", "中段"), ("中段", "远段"), ("近段", "远段"))
RANGE_WORDS = ("至", "到", "至", "-")  # 开口至近段: two Locations, each a Position
LIST_WORDS = ("、", "及", "和")        # 近段、中段: a list that scopes the finding after it

# Degrees by the kind of sentence they fit.
STENOSIS = ("狭窄", "狭窄", "狭窄", "狭窄", "重度狭窄", "中度狭窄", "轻度狭窄", "管状狭窄",
            "节段性狭窄", "局限性狭窄", "弥漫性狭窄", "偏心性狭窄", "中重度狭窄", "轻中度狭窄")
NO_PERCENT = ("斑块", "钙化", "管壁不规则", "管壁不规整", "弥漫性病变", "心肌桥", "肌桥",
              "次全闭塞", "完全闭塞", "慢性完全闭塞", "闭塞", "急性闭塞", "重度狭窄", "瘤样扩张",
              "扩张", "血栓影", "串联病变", "长病变", "临界病变")
# Findings that take their worst percentage after 最重处/最重 (弥漫性病变，最重处90%).
WORST_OF = ("弥漫性病变", "串联病变", "长病变", "弥漫性狭窄")
PLAQUE_LIKE = ("斑块", "钙化", "管壁不规则", "管壁不规整", "弥漫性病变", "偏心性斑块", "弥漫性斑块")
OCCLUSIONS = ("闭塞", "完全闭塞", "慢性完全闭塞", "次全闭塞", "急性闭塞", "CTO")
NEGATABLE = ("狭窄", "狭窄", "狭窄", "斑块", "闭塞", "钙化")
PERCENT_VALUES = (20, 25, 30, 40, 45, 50, 60, 65, 70, 75, 80, 85, 90, 95, 99)
# Percentages a severity word admits (a 轻度狭窄 of 85% would teach the model nonsense).
SEVERITY_RANGE = {"轻度狭窄": (20, 50), "中度狭窄": (50, 70), "重度狭窄": (70, 99),
                  "中重度狭窄": (60, 85), "轻中度狭窄": (30, 60), "狭窄": (20, 99),
                  "再狭窄": (30, 90)}
NEGATIONS = ("未见", "未见", "未见", "无", "没有")

COORDINATORS = ("及", "、", "和", "与")

# Pinyin-input slips: a character typed as another with the same sound. Only lesion words and
# text without entities get them (a vessel or segment spelling must stay one the records map).
HOMOPHONES = {
    "窄": "寨榨", "塞": "赛色", "斑": "班板", "块": "快", "钙": "盖", "肌": "机基", "则": "责",
    "规": "归", "桥": "乔", "弥": "迷", "漫": "慢", "闭": "必", "扩": "括", "张": "章",
    "影": "映", "造": "早", "顺": "瞬", "利": "力", "议": "义", "治": "至", "疗": "了",
}

# Sentences with no entity at all.
PROCEDURE = (
    "穿刺右桡动脉成功",
    "穿刺右股动脉成功",
    "局麻下穿刺左桡动脉成功",
    "置入6F动脉鞘管",
    "选用JL3.5、JR4.0造影导管行多体位造影",
    "行冠状动脉多体位投照造影",
    "冠脉分布呈右优势型",
    "冠脉分布呈左优势型",
    "冠脉分布呈均衡型",
    "造影剂{colon}碘海醇",
    "造影剂{colon}碘克沙醇",
    "造影剂用量约{ml}ml",
    "术中患者生命体征平稳",
    "手术过程顺利{comma}患者安返病房",
    "术后穿刺点加压包扎",
    "肝素{units}U静脉注射",
)
HEADERS = ("冠状动脉造影报告", "冠脉造影检查报告", "心导管室报告", "冠状动脉造影及介入治疗报告")
PATIENT = "{sex_label}{colon}{sex}  年龄{colon}{age}岁  住院号{colon}{mrn}"
INDICATIONS = (
    "因胸闷{n}月入院",
    "因反复胸痛{n}年入院",
    "因活动后胸闷气短{n}周入院",
    "冠心病待查",
)
CONCLUSION_HEADS = ("结论", "诊断", "造影结论", "造影诊断", "印象")
DISEASES = (
    "冠状动脉粥样硬化性心脏病",
    "冠心病",
)
DISEASE_TAILS = ("单支病变", "双支病变", "三支病变")  # by the number of territories diseased
NORMAL_CONCLUSIONS = ("冠状动脉造影结果正常", "冠脉造影所见大致正常")
ADVICE = ("建议药物治疗", "建议择期PCI治疗", "建议心外科会诊行CABG", "建议强化药物治疗并随访",
          "已行PCI治疗", "建议定期复查")
SECTION_TITLES = ("造影所见", "检查所见", "造影结果")
NARRATIVE_OPENINGS = ("造影示", "结果示", "冠状动脉造影示", "冠脉造影显示", "造影所见")
TIMI = "TIMI血流{grade}级"
# Numbered-list habits: the item marker for item k (1-based).
NUMBERINGS = ("{k}、", "{k}.", "{k}. ", "（{k}）", "({k})", "{circled}", "{wide}．")
CIRCLED = "①②③④⑤⑥⑦⑧⑨"
# Terse English-heavy notes.
TERSE_HEADS = ("CAG:", "CAG结果:", "Findings:", "冠脉造影:")
TERSE_DOMINANCE = ("右优势型", "左优势型", "均衡型", "dominant: R", "R-dominant")
TERSE_NORMAL = ("正常", "normal", "(-)")
TERSE_TAILS = ("Imp: {disease}", "Dx: CAD, {disease}", "Impression: {disease}")
# A vessel named without a finding, in a sentence that has findings of other vessels: the
# pairs it forms are NoRelation, which the model must learn from the sentence, not the schema.
BYSTANDER = ("{v}发育细小", "{v}为优势血管", "{v}为非优势血管", "{v}纤细", "{v}走行迂曲")
COLLATERAL = ("远端经{v}侧支逆向显影", "可见{v}向其提供侧支循环", "{v}可见侧支形成")
# Stents and follow-ups.
STENT_SIZES = ("2.5×15mm", "2.75×18mm", "3.0×24mm", "3.0×29mm", "3.5×18mm", "2.5×33mm")
COMPARISONS = ("较前进展", "较前加重", "同前", "较前无明显变化")
LESION_MEASURES = ("病变长度约{mm}mm", "病变长约{mm}mm", "参考血管直径{ref}mm")
FOLLOW_UP = ("患者{n}年前于", "PCI术后{n}年复查，既往于", "患者{n}个月前于")

# Every vessel and segment spelling the generator can write (before a report's full-width
# habit): the records' synonym table must map each one.
BODY_PART_SPELLINGS = tuple(dict.fromkeys(
    name
    for vessel in (*(v for main, branches in MAIN_VESSELS for v in (main, *branches)), RAMUS,
                   LEFT_SYSTEM, RIGHT_SYSTEM)
    for name in (*vessel.chinese, *vessel.english)
))
LOCATION_SPELLINGS = tuple(dict.fromkeys(
    (*LOCATIONS, *(s for spellings in ENDS_HABIT.values() for s in spellings),
     *LEFT_MAIN_LOCATIONS)
))
