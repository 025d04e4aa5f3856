# The PyTorch values test/bad-input-regressions.test.ts (issue 14, item 9) compares against.
# Run with Debian's python3-torch (1.13): /usr/bin/python3 scripts/edge-cases-reference.py
import torch

nan, inf = float('nan'), float('inf')


def grad(f, x):
    a = torch.tensor(x, requires_grad=True)
    f(a).sum().backward()
    return a.grad.tolist()


print('sign(nan)', torch.sign(torch.tensor([nan])).tolist())           # [0.0]
print("relu'", grad(torch.relu, [nan, 1.]))                             # [1.0, 1.0]
print("abs'", grad(torch.abs, [nan, 1.]))                               # [0.0, 1.0]
print("max'", grad(lambda t: t.max(), [nan, 1.]))                       # [1.0, 0.0]
print("max(dim)'", grad(lambda t: t.max(0).values, [1., nan]))          # [0.0, 1.0]
print("amax'", grad(lambda t: t.amax(), [nan, 1.]))                     # [nan, nan]
print("pow(0.5)'", grad(lambda t: t.pow(0.5), [0., 4.]))                # [inf, 0.25]
print("clamp(min=0)'", grad(lambda t: t.clamp(min=0), [nan, 1.]))       # [0.0, 1.0]
print('logSoftmax([inf, 1])', torch.tensor([inf, 1.]).log_softmax(0).tolist())  # [nan, nan]
print('x - x', (torch.tensor([nan, inf, 1.]) - torch.tensor([nan, inf, 1.])).tolist())  # [nan, nan, 0.0]
