using LoraBridge.Python;

namespace LoraBridge.Extensions;

/// <summary>
/// The host one extension unit sees: the application's host, plus its own Python folder (<c>python/</c> in the unit's
/// folder) for <see cref="IExtensionHost.ImportPython"/>, with errors naming the unit.
/// </summary>
internal sealed class UnitHost(IExtensionHost inner, ExtensionUnit unit) : IExtensionHost
{
    public string DataDir => inner.DataDir;

    public string? GetSetting(string key) => inner.GetSetting(key);

    public void Log(string message) => inner.Log(message);

    public IReadOnlyList<string> ModelsDirs => inner.ModelsDirs;

    public Task<string?> RunPythonAsync(string code, IReadOnlyDictionary<string, string>? inputs = null, CancellationToken ct = default) =>
        inner.RunPythonAsync(code, inputs, ct);

    public IPythonModule ImportPython(string module)
    {
        ArgumentNullException.ThrowIfNull(module);
        var folder = unit.PythonDir;
        if (folder is null)
            throw new ExtensionPythonException(unit.Name, module, null, "ModuleNotFoundError",
                $"a single-file extension has no python folder; put {Path.GetFileName(unit.Path)} in a folder beside a python/ folder", "");
        var parts = module.Split('.');
        if (parts.Any(p => p.Length == 0 || !(char.IsLetter(p[0]) || p[0] == '_') || !p.All(c => char.IsLetterOrDigit(c) || c == '_')))
            throw new ExtensionPythonException(unit.Name, module, null, "ValueError", $"'{module}' is not a Python module name", "");
        var stem = Path.Combine([folder, .. parts]);
        if (!File.Exists(stem + ".py") && !File.Exists(Path.Combine(stem, "__init__.py")))
            throw new ExtensionPythonException(unit.Name, module, null, "ModuleNotFoundError",
                $"no {stem}.py or {Path.Combine(stem, "__init__.py")}", "");
        if (inner is ExtensionHost host) return new ExtensionPythonModule(host, unit.Name, folder, module);
        try
        {
            return inner.ImportPython(module);
        }
        catch (NotSupportedException)
        {
            // A host without Python (listing, tests): the extension still loads; calling the module says why not.
            return new UnavailablePythonModule(module);
        }
    }
}

/// <summary>A module of a host that lends no Python: every call fails saying so.</summary>
internal sealed class UnavailablePythonModule(string module) : IPythonModule
{
    public string Name => module;

    public Task<object?> CallAsync(string function, params object?[] args) =>
        Task.FromException<object?>(new InvalidOperationException($"no Python runtime is available to extensions here (calling {module}.{function})"));
}

/// <summary>A module of one extension's Python folder, imported on the Python thread at its first call.</summary>
internal sealed class ExtensionPythonModule(ExtensionHost host, string extension, string folder, string module) : IPythonModule
{
    public string Name => module;

    public async Task<object?> CallAsync(string function, params object?[] args)
    {
        ArgumentNullException.ThrowIfNull(function);
        var bridge = host.RequireBridge();
        try
        {
            return await bridge.CallExtensionFunctionAsync(extension, folder, module, function, args ?? [null]).ConfigureAwait(false);
        }
        catch (PythonCallException ex)
        {
            throw new ExtensionPythonException(extension, module, function, ex.PythonType, ex.PythonMessage, ex.PythonTraceback, ex);
        }
        catch (ArgumentException ex)
        {
            throw new ArgumentException($"extension '{extension}': {module}.{function}: {ex.Message}", ex);
        }
    }
}
