import itertools

import torch

from extraction.heads import (
    FORBIDDEN,
    NerHead,
    constrained_crf,
    crf_marginals,
    viterbi_paths,
)
from ingest.bieos import allowed_end, allowed_start, allowed_transitions, tag_set

TAGS = tag_set(["A", "B"])
torch.set_num_threads(1)  # tiny ops: threads on a busy machine only wait on each other


def test_decoding_never_emits_a_forbidden_transition():
    torch.manual_seed(0)
    crf = constrained_crf(TAGS)
    allowed = allowed_transitions(TAGS)
    # Emissions that shout for ill-formed paths: I-/E- tags everywhere.
    emissions = torch.randn(64, 12, len(TAGS)) * 5
    for i, tag in enumerate(TAGS):
        if tag[0] in "IE":
            emissions[..., i] += 8.0
    lengths = torch.randint(1, 13, (64,))
    mask = torch.arange(12).unsqueeze(0) < lengths.unsqueeze(1)
    for path in crf.decode(emissions, mask=mask):
        tags = [TAGS[i] for i in path]
        assert tags[0] in allowed_start(TAGS)
        assert tags[-1] in allowed_end(TAGS)
        assert all(pair in allowed for pair in itertools.pairwise(tags))


def test_the_tensor_trace_back_finds_pytorch_crf_s_paths():
    torch.manual_seed(3)
    crf = constrained_crf(TAGS)
    with torch.no_grad():  # transitions as training leaves them, not all zero
        crf.parametrizations.transitions.original.normal_(0, 2)
        crf.parametrizations.start_transitions.original.normal_(0, 2)
    for length in (1, 2, 17):
        emissions = torch.randn(40, length, len(TAGS)) * 3
        emissions[0] = 0.0  # all ties: both must pick the same first maximum
        lengths = torch.randint(1, length + 1, (40,))
        lengths[1] = length
        mask = torch.arange(length).unsqueeze(0) < lengths.unsqueeze(1)
        paths = viterbi_paths(crf, emissions, mask)
        assert [len(p) for p in paths] == lengths.tolist()
        assert paths == crf.decode(emissions, mask=mask)


def test_forbidden_transitions_stay_forbidden_after_training_steps():
    torch.manual_seed(1)
    head = NerHead(8, TAGS, dropout=0.0)
    optimizer = torch.optim.SGD(head.parameters(), lr=1.0)
    hidden = torch.randn(4, 7, 8)
    tags = torch.zeros(4, 6, dtype=torch.long)
    mask = torch.ones(4, 6, dtype=torch.bool)
    for _ in range(3):
        loss = head.loss(head.emissions(hidden, mask), tags, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    o, i_a = TAGS.index("O"), TAGS.index("I-A")
    assert head.crf.transitions[o, i_a] < FORBIDDEN / 2
    assert head.crf.start_transitions[i_a] < FORBIDDEN / 2


def test_marginals_match_brute_force_and_sum_to_one():
    torch.manual_seed(2)
    tags = tag_set(["A"])  # 5 tags: 125 paths of length 3 to enumerate
    crf = constrained_crf(tags)
    emissions = torch.randn(2, 3, len(tags))
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.bool)
    marginals = crf_marginals(crf, emissions, mask)

    def score(seq, e):
        s = crf.start_transitions[seq[0]] + e[0, seq[0]]
        for t in range(1, len(seq)):
            s = s + crf.transitions[seq[t - 1], seq[t]] + e[t, seq[t]]
        return s + crf.end_transitions[seq[-1]]

    for b, length in ((0, 3), (1, 2)):
        seqs = list(itertools.product(range(len(tags)), repeat=length))
        scores = torch.stack([score(s, emissions[b]) for s in seqs])
        probs = torch.softmax(scores, 0)
        brute = torch.zeros(length, len(tags))
        for p, seq in zip(probs, seqs, strict=True):
            for t, c in enumerate(seq):
                brute[t, c] += p
        assert torch.allclose(marginals[b, :length], brute, atol=1e-5)
        assert torch.allclose(marginals[b, :length].sum(-1), torch.ones(length), atol=1e-5)


def test_emissions_skip_cls_and_stop_before_sep():
    head = NerHead(4, TAGS)
    hidden = torch.randn(2, 6, 4)  # [CLS] + up to 4 chars + [SEP]
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    head.eval()
    emissions = head.emissions(hidden, mask)
    assert emissions.shape == (2, 4, len(TAGS))
    assert torch.allclose(emissions[0, 0], head.emit(hidden[0, 1]))


def test_marginals_of_a_padded_batch_match_each_sentence_alone_in_float64():
    """Sentences of many lengths in one batch: each one's marginals are those of a float64
    forward-backward over it alone (torch.logsumexp), and its padding rows are zero."""
    torch.manual_seed(4)
    crf = constrained_crf(TAGS)
    with torch.no_grad():
        crf.parametrizations.transitions.original.normal_(0, 2)
        crf.parametrizations.end_transitions.original.normal_(0, 2)
    lengths = [1, 2, 5, 9, 9, 3]
    emissions = torch.randn(len(lengths), 9, len(TAGS)) * 3
    mask = torch.arange(9).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    marginals = crf_marginals(crf, emissions, mask)
    start, trans, end = (x.double() for x in (crf.start_transitions, crf.transitions,
                                             crf.end_transitions))
    for b, n in enumerate(lengths):
        e = emissions[b, :n].double()
        alpha, beta = [start + e[0]], [end]
        for t in range(1, n):
            alpha.append(torch.logsumexp(alpha[-1][:, None] + trans, 0) + e[t])
            beta.insert(0, torch.logsumexp(trans + (e[n - t] + beta[0])[None, :], 1))
        log_z = torch.logsumexp(alpha[-1] + end, 0)
        expected = torch.exp(torch.stack(alpha) + torch.stack(beta) - log_z)
        assert torch.allclose(marginals[b, :n].double(), expected, atol=1e-5)
        assert not marginals[b, n:].any()
