using Python.Runtime;

namespace LoraBridge.Python;

/// <summary>What <see cref="PythonBridge.BusyLoopAsync"/> runs.</summary>
public enum BusyLoopKind
{
    /// <summary>A pure-Python loop (holds the GIL between switch intervals).</summary>
    Python,
    /// <summary>torch matmuls (release the GIL inside kernels).</summary>
    Torch,
}

/// <summary>Outcome of the last <see cref="PythonBridge.BusyLoopAsync"/>.</summary>
/// <param name="State">never-run, running, interrupted or completed.</param>
/// <param name="Iterations">Iterations it ran.</param>
public readonly record struct LoopState(string State, long Iterations);

// Test and benchmark plumbing (python/lorabridge/diagnostics.py): round trips, exception mapping, cancellation of
// running Python, and checks on the tensor channel. Nothing here takes part in generation.
public sealed partial class PythonBridge
{
    private PyObject? _diagnostics;

    /// <summary>The <c>lorabridge.diagnostics</c> module; only valid on the Python thread.</summary>
    private PyObject Diagnostics
    {
        get
        {
            _ = Module; // checks the thread, and diagnostics reads bridge's tensor table
            return _diagnostics ??= Py.Import("lorabridge.diagnostics");
        }
    }

    /// <summary>Sends a string to Python and back.</summary>
    public Task<string> EchoAsync(string value, CancellationToken ct = default) => CallAsync(_ =>
    {
        using var r = Invoke(Diagnostics, "echo", new PyString(value));
        return r.As<string>();
    }, ct);

    /// <summary>
    /// Sends an integer to Python and back, synchronously; only on the Python thread (inside
    /// <see cref="PythonRuntime.InvokeAsync{T}(Func{T}, CancellationToken)"/>). The call round-trip benchmark uses it.
    /// </summary>
    public long Echo(long value)
    {
        using var r = Invoke(Diagnostics, "echo", new PyInt(value));
        return r.As<long>();
    }

    /// <summary>Makes Python raise the builtin exception <paramref name="pythonType"/> with <paramref name="message"/>.</summary>
    public Task RaiseAsync(string pythonType, string message, CancellationToken ct = default) => CallAsync(_ =>
    {
        Invoke(Diagnostics, "fail", new PyString(pythonType), new PyString(message)).Dispose();
        return true;
    }, ct);

    /// <summary>Runs a loop in Python for <paramref name="seconds"/>; returns its iteration count. Cancellation interrupts it.</summary>
    public Task<long> BusyLoopAsync(double seconds, BusyLoopKind kind = BusyLoopKind.Python, CancellationToken ct = default) => CallAsync(_ =>
    {
        using var r = Invoke(Diagnostics, "busy_loop", new PyFloat(seconds), new PyString(kind == BusyLoopKind.Torch ? "torch" : "python"));
        return r.As<long>();
    }, ct);

    /// <summary>State of the last busy loop and its iteration count.</summary>
    public Task<LoopState> GetLastLoopStateAsync(CancellationToken ct = default) => CallAsync(_ =>
    {
        using var d = Invoke(Diagnostics, "last_loop_state");
        return new LoopState(Get<string>(d, "state"), Get<long>(d, "iterations"));
    }, ct);

    /// <summary>Sum of all elements (as float64): shows that written bytes arrived.</summary>
    public Task<double> SumTensorAsync(TensorHandle tensor, CancellationToken ct = default) => CallAsync(_ =>
    {
        using var r = Invoke(Diagnostics, "tensor_sum", new PyInt(tensor.Id));
        return r.As<double>();
    }, ct);

    /// <summary>Multiplies the tensor in place by <paramref name="factor"/>: a Python-side change that reads must see.</summary>
    public Task ScaleTensorAsync(TensorHandle tensor, double factor, CancellationToken ct = default) => CallAsync(_ =>
    {
        Invoke(Diagnostics, "tensor_scale_", new PyInt(tensor.Id), new PyFloat(factor)).Dispose();
        return true;
    }, ct);
}
