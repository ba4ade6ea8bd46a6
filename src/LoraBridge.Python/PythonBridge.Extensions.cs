using System.Collections;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using Python.Runtime;

namespace LoraBridge.Python;

/// <summary>
/// Called on the Python thread right after a sampler step's CFG combine, while the step waits: <paramref name="denoised"/>
/// is valid only until the callback returns (Python code may change it in place).
/// </summary>
/// <param name="denoised">The combined output [batch, channels, h, w] (the guided eps for DDIM, as in A1111).</param>
/// <param name="step">1-based model call of the run.</param>
/// <param name="totalSteps">Model calls of the run.</param>
/// <param name="sigma">Noise level of the call (the timestep for DDIM).</param>
/// <param name="cond">The positive prediction the CFG mixed (AND-parts at scale 1); valid as long as <paramref name="denoised"/>.</param>
/// <param name="uncond">The negative prediction; valid as long as <paramref name="denoised"/>.</param>
public delegate void AfterCfgCallback(TensorHandle denoised, int step, int totalSteps, double sigma, TensorHandle cond, TensorHandle uncond);

/// <summary>
/// Called on the Python thread right before a sampler step's model call (A1111's <c>on_cfg_denoiser</c>), while the step
/// waits. The three tensors are copies made for this call: changing them in place changes what the model sees (not the
/// sampler's latent nor the cached conditionings); they are valid only until the callback returns.
/// </summary>
/// <param name="x">The model input latent [batch, channels, h, w].</param>
/// <param name="step">1-based model call of the run.</param>
/// <param name="totalSteps">Model calls of the run.</param>
/// <param name="sigma">Noise level of the call (the timestep for DDIM).</param>
/// <param name="cond">The positive conditioning rows [rows, tokens, width] (AND-parts of every image, stacked).</param>
/// <param name="uncond">The negative conditioning rows [batch, tokens, width].</param>
public delegate void BeforeModelCallCallback(TensorHandle x, int step, int totalSteps, double sigma, TensorHandle cond, TensorHandle uncond);

/// <summary>An 8-bit RGB picture, rows top to bottom, 3 bytes a pixel.</summary>
/// <param name="Pixels">Width × height × 3 bytes.</param>
/// <param name="Width">Width in pixels.</param>
/// <param name="Height">Height in pixels.</param>
public sealed record RgbImage(byte[] Pixels, int Width, int Height);

// C# extensions (python/lorabridge/ext_host.py): their own Python modules called with typed values, the after-CFG
// callback inside a step, and images as pixels before they become PNG files.
public sealed partial class PythonBridge
{
    /// <summary>
    /// Calls <c>module.function(*args)</c> from an extension's own <paramref name="pythonDir"/> (put on <c>sys.path</c>).
    /// Arguments and the result cross as null, bool, long, double, string, byte[], <see cref="TensorHandle"/> (the
    /// function gets the torch tensor itself; a returned tensor comes back as a new handle), lists and string-keyed
    /// dictionaries of those. Results: <c>long</c>, <c>double</c>, <c>List&lt;object?&gt;</c>,
    /// <c>Dictionary&lt;string, object?&gt;</c>.
    /// </summary>
    /// <exception cref="ArgumentException">An argument of a type that cannot cross.</exception>
    /// <exception cref="PythonCallException">The import or the function raised (syntax errors included).</exception>
    public Task<object?> CallExtensionFunctionAsync(string extension, string pythonDir, string module, string function,
        IReadOnlyList<object?> args, CancellationToken ct = default) => CallAsync(m =>
    {
        var pins = new List<GCHandle>();
        try
        {
            var items = args.Select((a, i) => ToPython(m, a, $"argument {i + 1}", pins)).ToArray();
            var list = new PyList(items);
            foreach (var item in items) item.Dispose();
            using var r = Invoke(m, "ext_call", new PyString(extension), new PyString(pythonDir), new PyString(module), new PyString(function), list);
            return FromPython(r);
        }
        finally
        {
            foreach (var pin in pins) pin.Free();
        }
    }, ct);

    /// <summary>
    /// Runs an extension's Python snippet in a fresh scope (no globals leak between snippets or into the bridge) with
    /// <paramref name="inputs"/> bound as string variables, and returns <c>str(result)</c> when the snippet sets
    /// <c>result</c>, else <c>null</c>. This is the v1 <c>IExtensionHost.RunPythonAsync</c>; typed calls go through
    /// <see cref="CallExtensionFunctionAsync"/>.
    /// </summary>
    /// <exception cref="PythonCallException">The snippet raised (syntax errors included).</exception>
    public Task<string?> RunSnippetAsync(string code, IReadOnlyDictionary<string, string>? inputs = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(code);
        return CallAsync(_ =>
        {
            using var scope = Py.CreateScope();
            foreach (var (name, value) in inputs ?? new Dictionary<string, string>())
            {
                using var v = new PyString(value);
                scope.Set(name, v);
            }
            scope.Exec(code);
            if (!scope.Contains("result")) return null;
            using var result = scope.Get("result");
            return result.ToString();
        }, ct);
    }

    /// <summary>
    /// One guided model call (as <see cref="StepAsync"/>) that calls <paramref name="afterCfg"/> on the Python thread
    /// right after the CFG combine, before the sampler update uses the result. An exception from the callback fails the
    /// step and is rethrown as it was thrown.
    /// </summary>
    public Task<int> StepWithAfterCfgAsync(long sampling, IReadOnlyList<(long Conditioning, double Weight)> positive, long negative,
        double cfgScale, AfterCfgCallback afterCfg, CancellationToken ct = default) => CallAsync(m =>
    {
        Exception? failure = null;
        Action<long, long, long, double, long, long> callback = (id, step, total, sigma, cond, uncond) =>
        {
            try
            {
                afterCfg(new TensorHandle(id), checked((int)step), checked((int)total), sigma, new TensorHandle(cond), new TensorHandle(uncond));
            }
            catch (Exception ex)
            {
                // Python only needs to unwind; the original exception is what the caller gets.
                failure = ex;
                throw new InvalidOperationException("the after-CFG callback failed: " + ex.Message);
            }
        };
        var parts = new PyList(positive.Select(p => (PyObject)new PyTuple([new PyInt(p.Conditioning), new PyFloat(p.Weight)])).ToArray());
        try
        {
            using var r = Invoke(m, "gen_step_after_cfg", new PyInt(sampling), parts, new PyInt(negative), new PyFloat(cfgScale), callback.ToPython());
            return r.As<int>();
        }
        catch (Exception) when (failure is not null)
        {
            ExceptionDispatchInfo.Throw(failure);
            throw;
        }
    }, ct);

    /// <summary>
    /// One guided model call (as <see cref="StepAsync"/>) with <paramref name="before"/> right before the model call
    /// and/or <paramref name="afterCfg"/> right after the CFG combine (either may be null), on the Python thread. An
    /// exception from a callback fails the step and is rethrown as it was thrown.
    /// </summary>
    public Task<int> StepWithHooksAsync(long sampling, IReadOnlyList<(long Conditioning, double Weight)> positive, long negative,
        double cfgScale, BeforeModelCallCallback? before, AfterCfgCallback? afterCfg, CancellationToken ct = default) => CallAsync(m =>
    {
        Exception? failure = null;
        // Python only needs to unwind from a failed callback; the original exception is what the caller gets.
        Action<long, long, long, double, long, long> Wrap(Action<TensorHandle, int, int, double, TensorHandle, TensorHandle> hook, string what) =>
            (id, step, total, sigma, cond, uncond) =>
            {
                try
                {
                    hook(new TensorHandle(id), checked((int)step), checked((int)total), sigma, new TensorHandle(cond), new TensorHandle(uncond));
                }
                catch (Exception ex)
                {
                    failure = ex;
                    throw new InvalidOperationException($"the {what} callback failed: " + ex.Message);
                }
            };
        // PyObject.None is shared: only the wrappers made here are disposed.
        using var beforePy = before is null ? null : Wrap((a, b, c, d, e, g) => before(a, b, c, d, e, g), "before-model-call").ToPython();
        using var afterPy = afterCfg is null ? null : Wrap((a, b, c, d, e, g) => afterCfg(a, b, c, d, e, g), "after-CFG").ToPython();
        var parts = new PyList(positive.Select(p => (PyObject)new PyTuple([new PyInt(p.Conditioning), new PyFloat(p.Weight)])).ToArray());
        try
        {
            using var r = Invoke(m, "gen_step_hooked", new PyInt(sampling), parts, new PyInt(negative), new PyFloat(cfgScale), beforePy ?? PyObject.None, afterPy ?? PyObject.None);
            return r.As<int>();
        }
        catch (Exception) when (failure is not null)
        {
            ExceptionDispatchInfo.Throw(failure);
            throw;
        }
    }, ct);

    /// <summary>The run's final latents decoded to RGB: the pixels <see cref="DecodePngAsync"/> would write.</summary>
    public Task<IReadOnlyList<RgbImage>> DecodeRgbAsync(long sampling, CancellationToken ct = default) => CallAsync(m =>
    {
        using var r = Invoke(m, "gen_decode_rgb", new PyInt(sampling));
        var images = new List<RgbImage>();
        for (int i = 0; i < r.Length(); i++)
        {
            using var item = r[i];
            using var bytes = item[0];
            images.Add(new RgbImage(ReadBytes(bytes), At<int>(item, 1), At<int>(item, 2)));
        }
        return (IReadOnlyList<RgbImage>)images;
    }, ct);

    /// <summary>PNG bytes of <paramref name="image"/> with the <c>parameters</c> text, encoded as <see cref="DecodePngAsync"/> encodes.</summary>
    /// <exception cref="PythonCallException">The pixel count does not match the size.</exception>
    public Task<byte[]> EncodePngAsync(RgbImage image, string parameters, CancellationToken ct = default) => CallAsync(m =>
    {
        var pin = GCHandle.Alloc(image.Pixels, GCHandleType.Pinned);
        try
        {
            var rgb = Invoke(m, "ext_bytes_at", new PyInt(pin.AddrOfPinnedObject().ToInt64()), new PyInt(image.Pixels.Length));
            using var png = Invoke(m, "png_encode_rgb", rgb, new PyInt(image.Width), new PyInt(image.Height), new PyString(parameters));
            return ReadBytes(png);
        }
        finally
        {
            pin.Free();
        }
    }, ct);

    // .NET value → a new Python reference (the caller disposes it).
    private static PyObject ToPython(PyObject m, object? value, string where, List<GCHandle> pins)
    {
        switch (value)
        {
            case null: return ((object?)null).ToPython();
            case bool b: return b.ToPython();
            case sbyte or byte or short or ushort or int or uint or long: return new PyInt(Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture));
            case ulong u: return u <= long.MaxValue ? new PyInt((long)u) : new PyInt(u);
            case float or double or decimal: return new PyFloat(Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture));
            case string s: return new PyString(s);
            case char c: return new PyString(c.ToString());
            case byte[] bytes:
                var pin = GCHandle.Alloc(bytes, GCHandleType.Pinned);
                pins.Add(pin);
                return Invoke(m, "ext_bytes_at", new PyInt(pin.AddrOfPinnedObject().ToInt64()), new PyInt(bytes.Length));
            case TensorHandle t: return Invoke(m, "ext_tensor_ref", new PyInt(t.Id));
            case IDictionary dict:
            {
                var d = new PyDict();
                foreach (DictionaryEntry e in dict)
                {
                    if (e.Key is not string key) throw new ArgumentException($"{where}: dictionary keys must be strings, got a {e.Key.GetType().Name}");
                    using var v = ToPython(m, e.Value, $"{where}[\"{key}\"]", pins);
                    d[key] = v;
                }
                return d;
            }
            case IEnumerable items:
            {
                var converted = items.Cast<object?>().Select((x, i) => ToPython(m, x, $"{where}[{i}]", pins)).ToArray();
                var list = new PyList(converted);
                foreach (var x in converted) x.Dispose();
                return list;
            }
            default:
                throw new ArgumentException($"{where}: a {value.GetType().FullName} cannot cross to Python (null, bool, integers, " +
                    "floating-point numbers, string, byte[], TensorHandle, lists, dictionaries with string keys)");
        }
    }

    // What ext_host._to_wire made crossable → .NET values.
    private static object? FromPython(PyObject o)
    {
        using var type = o.GetPythonType();
        switch (type.Name)
        {
            case "NoneType": return null;
            case "bool": return o.As<bool>();
            case "int": return o.As<long>();
            case "float": return o.As<double>();
            case "str": return o.As<string>();
            case "bytes": return ReadBytes(o);
            case "TensorRef":
                using (var h = o.GetAttr("handle")) return new TensorHandle(h.As<long>());
            case "list":
            {
                var list = new List<object?>();
                long n = o.Length();
                for (long i = 0; i < n; i++)
                {
                    using var item = o[(int)i];
                    list.Add(FromPython(item));
                }
                return list;
            }
            case "dict":
            {
                var dict = new Dictionary<string, object?>(StringComparer.Ordinal);
                using var pairs = o.InvokeMethod("items");
                using var iter = pairs.GetIterator();
                while (iter.MoveNext())
                {
                    using (var pair = iter.Current)
                    using (var key = pair[0])
                    using (var v = pair[1])
                        dict[key.As<string>()] = FromPython(v);
                }
                return dict;
            }
            default: throw new InvalidOperationException($"a Python {type.Name} reached C# unconverted");
        }
    }
}
