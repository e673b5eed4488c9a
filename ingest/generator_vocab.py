"""Words and phrases of the synthetic report generator (kept apart from its grammar).

Entity surfaces follow the annotation guideline's lists. Phrases that carry no entity never
contain a vessel name or a negation cue, so the synthetic annotations are never inconsistent
with themselves (an unmarked 右冠状动脉 in one sentence and a marked one in the next would teach
the model noise).
"""

from __future__ import annotations

# The entity and relation types the grammar produces; generate_corpus checks them against the
# schema so a renamed type fails loudly instead of producing a corpus the validator rejects.
BODY_PART, LOCATION, DEGREE, QUANTIFIER, NEGATION = (
    "BodyPart", "Location", "Degree", "Quantifier", "Negation",
)
NEGATIVE, MODIFIER, POSITION, PERCENTAGE = "Negative", "Modifier", "Position", "Percentage"

# Main vessels in report order, with the spellings reports use and their side branches.
MAIN_VESSELS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("左主干",), ()),
    (("前降支", "左前降支"), ("第一对角支", "第二对角支", "对角支")),
    (("回旋支", "左回旋支"), ("钝缘支", "第一钝缘支", "第二钝缘支")),
    (("右冠状动脉", "右冠"), ("后降支", "左室后支")),
)
EXTRA_VESSELS = ("中间支",)
ABBREVIATIONS = {"左主干": "LM", "前降支": "LAD", "左前降支": "LAD", "回旋支": "LCX",
                 "左回旋支": "LCX", "右冠状动脉": "RCA", "右冠": "RCA"}

LOCATIONS = ("开口", "近段", "中段", "远段", "近中段", "中远段", "分叉处", "全程")
LOCATION_PAIRS = (("开口", "近段"), ("近段", "中段"), ("中段", "远段"))

# Degrees by the kind of sentence they fit.
STENOSIS = ("狭窄", "狭窄", "狭窄", "重度狭窄", "中度狭窄", "轻度狭窄")
NO_PERCENT = ("斑块", "钙化", "管壁不规则", "弥漫性病变", "心肌桥", "次全闭塞", "完全闭塞",
              "闭塞", "重度狭窄")
NEGATABLE = ("狭窄", "狭窄", "狭窄", "斑块", "闭塞", "钙化")
PERCENT_VALUES = (20, 25, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 99)
# Percentages a severity word admits (a 轻度狭窄 of 85% would teach the model nonsense).
SEVERITY_RANGE = {"轻度狭窄": (20, 50), "中度狭窄": (50, 70), "重度狭窄": (70, 99),
                  "狭窄": (30, 99), "再狭窄": (30, 90)}
NEGATIONS = ("未见", "未见", "未见", "无", "没有")

COORDINATORS = ("及", "、", "和", "与")

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
HEADERS = ("冠状动脉造影报告", "冠脉造影检查报告", "心导管室报告")
PATIENT = "{sex_label}{colon}{sex}  年龄{colon}{age}岁  住院号{colon}{mrn}"
INDICATIONS = (
    "因胸闷{n}月入院",
    "因反复胸痛{n}年入院",
    "因活动后胸闷气短{n}周入院",
    "冠心病待查",
)
CONCLUSION_HEADS = ("结论", "诊断", "造影结论", "造影诊断")
DISEASES = (
    "冠状动脉粥样硬化性心脏病",
    "冠心病",
)
DISEASE_TAILS = ("单支病变", "双支病变", "三支病变")  # by the number of territories diseased
# Which of the three territories (LAD, LCX, RCA) a vessel belongs to; the left main counts alone.
TERRITORY = {
    **{name: "LAD" for name in ("前降支", "左前降支", "第一对角支", "第二对角支", "对角支")},
    **{name: "LCX" for name in ("回旋支", "左回旋支", "钝缘支", "第一钝缘支", "第二钝缘支")},
    **{name: "RCA" for name in ("右冠状动脉", "右冠", "后降支", "左室后支")},
}
NORMAL_CONCLUSIONS = ("冠状动脉造影结果正常", "冠脉造影所见大致正常")
ADVICE = ("建议药物治疗", "建议择期PCI治疗", "建议心外科会诊行CABG", "建议强化药物治疗并随访",
          "已行PCI治疗")
SECTION_TITLES = ("造影所见", "检查所见", "造影结果")
TIMI = "TIMI血流{grade}级"
