"""What every student check is made of: a Case per crafted input, a CheckResult (for grading tools), and the runner
that turns a student's exception into a failed case with a hint, never a crash (checks.py, mlp_checks.py)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

__all__ = ["Case", "CheckError", "CheckResult"]


@dataclass(frozen=True)
class Case:
    """One crafted case: what it checks, whether it passed, and what to try when it did not."""

    name: str
    passed: bool
    message: str = ""
    hint: str = ""
    required: bool = True  # False: advice (e.g. large logits), which the lesson's own softmax fails too
    id: str = ""  # stable, for grading tools and tests: "softmax.rows_sum_to_one" (the check, then the case)

    def line(self, repeated: bool = False) -> str:
        mark = "✓" if self.passed else ("✗" if self.required else "!")
        text = f"  {mark} {self.name}"
        if repeated:  # one error in every case: say it once
            return text + ": the same error as above"
        if not self.passed:
            text += f": {self.message}" + (f"\n      hint: {self.hint}" if self.hint else "")
        return text


@dataclass
class CheckResult:
    """All cases of one check; truthy when every required case passed."""

    function: str
    cases: list[Case] = field(default_factory=list)
    id: str = ""  # the check: "softmax", "cross_entropy", "sgd", "net", "relu" or "mlp_net"

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.cases if c.required)

    @property
    def failures(self) -> list[Case]:
        return [c for c in self.cases if not c.passed]

    @property
    def score(self) -> float:
        """Fraction of the required cases passed (for a grade)."""
        req = [c for c in self.cases if c.required]
        return sum(c.passed for c in req) / len(req) if req else 1.0

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        req = [c for c in self.cases if c.required]
        head = (f"{self.function}: {sum(c.passed for c in req)} of {len(req)} checks passed"
                + (" — well done!" if self.passed else ""))
        lines, said = [head], set()
        for c in self.cases:
            lines.append(c.line(repeated=not c.passed and (c.message, c.hint) in said))
            said.add((c.message, c.hint))
        return "\n".join(lines)

    def __repr__(self) -> str:
        failed = ", ".join(c.name for c in self.failures if c.required)
        return f"CheckResult({self.function}: {'passed' if self.passed else 'failed: ' + failed})"

    def to_dict(self) -> dict:
        return {"id": self.id, "function": self.function, "passed": self.passed, "score": self.score,
                "cases": [asdict(c) for c in self.cases]}


class CheckError(AssertionError):
    """raise_on_fail=True and a required case failed; .result holds every case."""

    def __init__(self, result: CheckResult):
        super().__init__(str(result))
        self.result = result


class _Fail(Exception):
    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message, self.hint = message, hint


class _Runner:
    """Runs cases in order; a student's exception fails the case with the exception named."""

    def __init__(self, title: str, id: str):
        self.result = CheckResult(title, id=id)

    def case(self, name: str, body: Callable[[], object], hint: str = "", required: bool = True) -> bool:
        id = f"{self.result.id}.{body.__name__}"  # the case's function: a stable name, whatever its words say
        try:
            body()
        except _Fail as f:
            self.result.cases.append(Case(name, False, f.message, f.hint or hint, required, id))
            return False
        except Exception as err:
            msg = f"your function raised {type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
            self.result.cases.append(Case(name, False, msg, _hint_for(err) or hint, required, id))
            return False
        self.result.cases.append(Case(name, True, required=required, id=id))
        return True

    def finish(self, verbose: bool, raise_on_fail: bool) -> CheckResult:
        if verbose:
            print(self.result)
        if raise_on_fail and not self.result.passed:
            raise CheckError(self.result)
        return self.result


def _hint_for(err: Exception) -> str:
    text = str(err)
    if "must match the size" in text:
        return "a shape does not broadcast: keep the summed dimension with sum(dim=1, keepdim=True)"
    if "shapes cannot be multiplied" in text:
        return "flatten each image to a row before the matrix product: X.reshape(-1, W.shape[0])"
    if "leaf Variable that requires grad" in text:
        return "change a parameter in place outside autograd: param.data -= ..., or inside with torch.no_grad()"
    if "Boolean value of Tensor" in text:
        return ("Python's max() and if compare whole tensors, not entries: use torch.max(X, torch.zeros_like(X)), "
                "elementwise")
    if "is invalid for input of size" in text:
        return "let reshape work out the batch size: X.reshape((-1, 784)), not a fixed 256"
    if "numpy" in text.lower():
        return "stay in torch: numpy arrays cut the tensor off from autograd"
    return ""


def _tensor(out, what: str) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise _Fail(f"{what} returned {type(out).__name__}, not a torch tensor",
                    "return a tensor (stay in torch: no numpy, no .tolist(), no .item())")
    return out


def _close(got: torch.Tensor, want: torch.Tensor, what: str, hint: str = "", atol: float = 1e-5) -> None:
    got, want = got.detach(), want.detach()
    if got.shape != want.shape:
        raise _Fail(f"{what}: shape {tuple(got.shape)}, expected {tuple(want.shape)}", hint)
    if not torch.allclose(got.double(), want.double(), atol=atol, rtol=1e-4, equal_nan=False):
        err = float((got.double() - want.double()).abs().nan_to_num(float("inf")).max())
        raise _Fail(f"{what}: differs from the reference by up to {err:.3g}", hint)


def _changed(call: Callable, inputs, watched=()) -> tuple[bool, bool]:
    """Calls `call` on copies of `inputs`: did it change a copy (in place), did it change one of `watched`?"""
    copies, before = [x.clone() for x in inputs], [w.detach().clone() for w in watched]
    call(*copies)
    return (not all(torch.equal(c, x) for c, x in zip(copies, inputs, strict=True)),
            not all(torch.equal(b, w.detach()) for b, w in zip(before, watched, strict=True)))


def _positional(fn) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 3
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
