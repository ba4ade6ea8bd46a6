using System.Runtime.InteropServices;
using Python.Runtime;

namespace LoraBridge.Python;

/// <summary>Opaque reference to a tensor that lives in Python (<c>bridge._tensors</c>).</summary>
/// <param name="Id">The Python-side handle number.</param>
public readonly record struct TensorHandle(long Id);

/// <summary>Element types a tensor created through the bridge may have.</summary>
public enum TensorDType
{
    /// <summary>torch.float32</summary>
    Float32,
    /// <summary>torch.float16</summary>
    Float16,
    /// <summary>torch.bfloat16</summary>
    BFloat16,
    /// <summary>torch.float64</summary>
    Float64,
    /// <summary>torch.int64</summary>
    Int64,
    /// <summary>torch.int32</summary>
    Int32,
    /// <summary>torch.uint8</summary>
    UInt8,
}

/// <summary>Shape, element type, device and byte size of a bridged tensor.</summary>
/// <param name="Shape">Dimensions.</param>
/// <param name="DType">torch dtype name without the <c>torch.</c> prefix.</param>
/// <param name="Device">torch device, e.g. <c>cpu</c> or <c>cuda:0</c>.</param>
/// <param name="Bytes">Size of the data in bytes.</param>
public sealed record TensorInfo(IReadOnlyList<long> Shape, string DType, string Device, long Bytes);

/// <summary>Facts about the embedded interpreter, torch and the compute device.</summary>
/// <param name="PythonVersion">e.g. 3.11.2.</param>
/// <param name="Executable"><c>sys.executable</c> inside the embedded interpreter.</param>
/// <param name="Prefix"><c>sys.prefix</c>.</param>
/// <param name="BasePrefix"><c>sys.base_prefix</c>.</param>
/// <param name="TorchVersion">torch.__version__.</param>
/// <param name="TorchThreads">torch.get_num_threads().</param>
/// <param name="OmpNumThreadsEnv">OMP_NUM_THREADS as Python sees it.</param>
/// <param name="Device"><c>cuda</c> or <c>cpu</c>.</param>
/// <param name="DeviceName">CUDA device name, or CPU.</param>
/// <param name="BlasLibrary">Resolved path(s) of the BLAS library torch loaded; empty when unknown.</param>
/// <param name="NumpyVersion">numpy version, empty when missing.</param>
/// <param name="PillowVersion">Pillow version, empty when missing.</param>
/// <param name="OmpWaitPolicyEnv">OMP_WAIT_POLICY as Python sees it (whether idle OpenMP threads spin or sleep).</param>
public sealed record PythonRuntimeInfo(
    string PythonVersion, string Executable, string Prefix, string BasePrefix, string TorchVersion, int TorchThreads,
    string OmpNumThreadsEnv, string Device, string DeviceName, string BlasLibrary, string NumpyVersion, string PillowVersion,
    string OmpWaitPolicyEnv);

/// <summary>Result of timing a float32 matmul on the CPU.</summary>
/// <param name="Size">Matrix size n (an n×n by n×n product).</param>
/// <param name="Seconds">Best time of the repeats.</param>
/// <param name="GFlops">2n³ / seconds / 1e9.</param>
public sealed record BlasCheckResult(int Size, double Seconds, double GFlops);

/// <summary>
/// The typed C# API over <c>python/lorabridge/bridge.py</c>, the only Python module C# calls.
/// Every method runs on the <see cref="PythonRuntime"/>'s Python thread; tensors stay in Python behind
/// <see cref="TensorHandle"/>s and bulk data is copied straight into or out of their memory.
/// </summary>
/// <remarks>
/// To add a capability: write a typed function in bridge.py (scalars, strings, lists, dicts; tensors as handles;
/// a result with several parts is a dict), then a method here that wraps it with <see cref="CallAsync{T}"/>. The
/// class is partial so capability areas live in their own files (<c>PythonBridge.Generation.cs</c>, …); test and
/// benchmark plumbing calls <c>lorabridge.diagnostics</c> (<c>PythonBridge.Diagnostics.cs</c>).
/// python/tests/test_bridge_contract.py checks every <c>Invoke(…, "name", …)</c> against the Python signatures.
/// </remarks>
public sealed partial class PythonBridge
{
    private PyObject? _module;
    private readonly PythonRuntimeProvider? _provider;
    private PythonRuntime? _runtime;

    /// <summary>Wraps a started runtime; the bridge module is imported on first use.</summary>
    public PythonBridge(PythonRuntime runtime)
    {
        _runtime = runtime;
        runtime.AddShutdownAction(DropModule);
    }

    /// <summary>
    /// A bridge whose runtime is discovered and booted on the first call (or when <see cref="StartBooting"/> asks),
    /// so creating it costs nothing and commands that never call Python never boot it.
    /// </summary>
    public PythonBridge(PythonRuntimeProvider provider)
    {
        _provider = provider;
    }

    /// <summary>The runtime the calls run on; for a lazily booted bridge, reading it boots Python (and waits).</summary>
    public PythonRuntime Runtime => _runtime ?? Attach(_provider!.Get());

    /// <summary>True once the runtime exists (a lazily booted bridge has booted).</summary>
    public bool IsBooted => _runtime is not null || _provider?.Started is not null;

    /// <summary>Begins booting a lazily booted bridge in the background (no-op when booted or eager).</summary>
    public void StartBooting()
    {
        if (_runtime is null) _provider?.StartBooting();
    }

    private PythonRuntime Attach(PythonRuntime runtime)
    {
        lock (this)
        {
            if (_runtime is null)
            {
                runtime.AddShutdownAction(DropModule);
                _runtime = runtime;
            }
            return _runtime;
        }
    }

    /// <summary>
    /// Runs <paramref name="body"/> on the Python thread with the <c>lorabridge.bridge</c> module. The body must
    /// return .NET values only and dispose the Python objects it creates.
    /// </summary>
    public Task<T> CallAsync<T>(Func<PyObject, T> body, CancellationToken ct = default) =>
        _runtime is { } rt ? rt.InvokeAsync(() => body(Module), ct) : CallAfterBootAsync(body, ct);

    private async Task<T> CallAfterBootAsync<T>(Func<PyObject, T> body, CancellationToken ct)
    {
        var rt = Attach(await _provider!.GetAsync().WaitAsync(ct).ConfigureAwait(false));
        return await rt.InvokeAsync(() => body(Module), ct).ConfigureAwait(false);
    }

    /// <summary>The bridge module; only valid on the Python thread.</summary>
    private PyObject Module
    {
        get
        {
            if (!Runtime.IsOnPythonThread)
                throw new InvalidOperationException("The bridge module may only be used on the Python thread; use CallAsync.");
            if (_module is not null) return _module;
            long start = BridgeCallTimings.Enabled ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
            _module = Py.Import("lorabridge.bridge");
            if (start != 0) BridgeCallTimings.Record("import lorabridge.bridge", start);
            return _module;
        }
    }

    /// <summary>Calls <c>bridge.name(*args)</c> and disposes the arguments; the caller disposes the result.</summary>
    private static PyObject Invoke(PyObject module, string name, params PyObject[] args)
    {
        long start = BridgeCallTimings.Enabled ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
        try
        {
            return module.InvokeMethod(name, args);
        }
        finally
        {
            foreach (var a in args) a.Dispose();
            if (start != 0) BridgeCallTimings.Record(name, start);
        }
    }

    private static T Get<T>(PyObject container, string key)
    {
        using var item = container[key];
        return item.As<T>();
    }

    private static T At<T>(PyObject tuple, int index)
    {
        using var item = tuple[index];
        return item.As<T>();
    }

    // ------------------------------------------------------------ runtime information

    /// <summary>Interpreter, torch, device and BLAS facts.</summary>
    public Task<PythonRuntimeInfo> GetRuntimeInfoAsync(CancellationToken ct = default) => CallAsync(m =>
    {
        using var d = Invoke(m, "runtime_info");
        return new PythonRuntimeInfo(
            Get<string>(d, "python_version"), Get<string>(d, "executable"), Get<string>(d, "prefix"), Get<string>(d, "base_prefix"),
            Get<string>(d, "torch_version"), Get<int>(d, "torch_threads"), Get<string>(d, "omp_num_threads_env"),
            Get<string>(d, "device"), Get<string>(d, "device_name"), Get<string>(d, "blas_library"),
            Get<string>(d, "numpy_version"), Get<string>(d, "pil_version"), Get<string>(d, "omp_wait_policy_env"));
    }, ct);

    /// <summary>Times a <paramref name="size"/>³ float32 matmul (best of <paramref name="repeats"/>).</summary>
    public Task<BlasCheckResult> CheckBlasAsync(int size = 1024, int repeats = 3, CancellationToken ct = default) => CallAsync(m =>
    {
        using var d = Invoke(m, "blas_check", new PyInt(size), new PyInt(repeats));
        return new BlasCheckResult(size, Get<double>(d, "seconds"), Get<double>(d, "gflops"));
    }, ct);

    // ------------------------------------------------------------ tensors

    /// <summary>Allocates a zero-filled tensor in Python.</summary>
    public Task<TensorHandle> CreateTensorAsync(IReadOnlyList<long> shape, TensorDType dtype = TensorDType.Float32, string device = "cpu", CancellationToken ct = default) => CallAsync(m =>
    {
        var dims = new PyList(shape.Select(d => (PyObject)new PyInt(d)).ToArray());
        using var r = Invoke(m, "tensor_create", dims, new PyString(DTypeName(dtype)), new PyString(device));
        return new TensorHandle(r.As<long>());
    }, ct);

    /// <summary>Shape, dtype, device and size of a tensor.</summary>
    public Task<TensorInfo> GetTensorInfoAsync(TensorHandle tensor, CancellationToken ct = default) => CallAsync(m =>
    {
        using var d = Invoke(m, "tensor_info", new PyInt(tensor.Id));
        using var shape = d["shape"];
        var dims = new long[shape.Length()];
        for (int i = 0; i < dims.Length; i++) dims[i] = At<long>(shape, i);
        return new TensorInfo(dims, Get<string>(d, "dtype"), Get<string>(d, "device"), Get<long>(d, "bytes"));
    }, ct);

    /// <summary>Copies <paramref name="data"/> into the tensor; its byte size must match the tensor's exactly.</summary>
    public Task WriteTensorAsync<T>(TensorHandle tensor, ReadOnlyMemory<T> data, CancellationToken ct = default) where T : unmanaged => CallAsync(m =>
    {
        WriteTensor(m, tensor, data.Span);
        return true;
    }, ct);

    /// <summary>Copies the tensor's data into <paramref name="destination"/>; its byte size must match the tensor's exactly.</summary>
    public Task ReadTensorAsync<T>(TensorHandle tensor, Memory<T> destination, CancellationToken ct = default) where T : unmanaged => CallAsync(m =>
    {
        ReadTensor(m, tensor, destination.Span);
        return true;
    }, ct);

    /// <summary>Synchronous <see cref="WriteTensorAsync{T}"/> for code already on the Python thread.</summary>
    public void WriteTensor<T>(TensorHandle tensor, ReadOnlySpan<T> data) where T : unmanaged => WriteTensor(Module, tensor, data);

    /// <summary>Synchronous <see cref="ReadTensorAsync{T}"/> for code already on the Python thread.</summary>
    public void ReadTensor<T>(TensorHandle tensor, Span<T> destination) where T : unmanaged => ReadTensor(Module, tensor, destination);

    private static unsafe void WriteTensor<T>(PyObject m, TensorHandle tensor, ReadOnlySpan<T> data) where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(data);
        using (var r = Invoke(m, "tensor_begin_write", new PyInt(tensor.Id)))
        {
            var (address, size) = (Get<long>(r, "address"), Get<long>(r, "bytes"));
            if (size != bytes.Length)
            {
                // Nothing was copied: drop the staging buffer, the tensor keeps its data.
                Invoke(m, "tensor_abort_write", new PyInt(tensor.Id)).Dispose();
                throw new ArgumentException($"tensor {tensor.Id} holds {size} bytes but {bytes.Length} bytes were given", nameof(data));
            }
            bytes.CopyTo(new Span<byte>((void*)address, bytes.Length));
        }
        Invoke(m, "tensor_end_write", new PyInt(tensor.Id)).Dispose();
    }

    private static unsafe void ReadTensor<T>(PyObject m, TensorHandle tensor, Span<T> destination) where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(destination);
        using (var r = Invoke(m, "tensor_begin_read", new PyInt(tensor.Id)))
        {
            var (address, size) = (Get<long>(r, "address"), Get<long>(r, "bytes"));
            if (size != bytes.Length)
            {
                Invoke(m, "tensor_end_read", new PyInt(tensor.Id)).Dispose();
                throw new ArgumentException($"tensor {tensor.Id} holds {size} bytes but the destination has {bytes.Length}", nameof(destination));
            }
            new ReadOnlySpan<byte>((void*)address, bytes.Length).CopyTo(bytes);
        }
        Invoke(m, "tensor_end_read", new PyInt(tensor.Id)).Dispose();
    }

    /// <summary>Drops the tensor; returns false when the handle was already released.</summary>
    public Task<bool> ReleaseTensorAsync(TensorHandle tensor, CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "tensor_release", new PyInt(tensor.Id));
        return r.As<bool>();
    }, ct);

    /// <summary>Number of live tensor handles.</summary>
    public Task<int> GetTensorCountAsync(CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "tensor_count");
        return r.As<int>();
    }, ct);

    private static string DTypeName(TensorDType dtype) => dtype switch
    {
        TensorDType.Float32 => "float32",
        TensorDType.Float16 => "float16",
        TensorDType.BFloat16 => "bfloat16",
        TensorDType.Float64 => "float64",
        TensorDType.Int64 => "int64",
        TensorDType.Int32 => "int32",
        TensorDType.UInt8 => "uint8",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    // Runs on the Python thread before finalization: handles would otherwise keep tensors alive into Py_Finalize.
    private void DropModule()
    {
        _diagnostics?.Dispose();
        _diagnostics = null;
        if (_module is null) return;
        Invoke(_module, "shutdown_cleanup").Dispose();
        _module.Dispose();
        _module = null;
    }
}
