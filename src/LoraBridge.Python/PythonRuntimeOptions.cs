namespace LoraBridge.Python;

/// <summary>Settings that choose and configure the embedded Python runtime.</summary>
public sealed record PythonRuntimeOptions
{
    /// <summary>An explicit interpreter (<c>--python</c>, <c>LoraBridge:Python:Executable</c>); when set, it is the only candidate.</summary>
    public string? Executable { get; init; }

    /// <summary>An A1111 install whose <c>venv/bin/python</c> is the second candidate (<c>--webui-dir</c>, <c>LoraBridge:WebUiDir</c>).</summary>
    public string? WebUiDir { get; init; }

    /// <summary>The app's data directory; <c>lorabridge setup</c> may create <c>venv/</c> there, which is then a candidate.</summary>
    public string? DataDir { get; init; }

    /// <summary>Threads torch may use; null or below 1 means <see cref="Environment.ProcessorCount"/>.</summary>
    public int? TorchThreads { get; init; }

    /// <summary>Folder that contains the <c>lorabridge</c> Python package; null finds it beside the app or in the repository.</summary>
    public string? PackageDir { get; init; }

    /// <summary>The PATH searched for <c>python3</c>; null uses the process's PATH (tests pass their own).</summary>
    public string? SearchPath { get; init; }

    /// <summary>The last-resort interpreter.</summary>
    public string SystemPython { get; init; } = "/usr/bin/python3";

    /// <summary>How long one candidate's probe (which imports torch) may take.</summary>
    public TimeSpan ProbeTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Where discovery keeps its verdicts; null (the default) uses <c>python-discovery.json</c> in <see cref="DataDir"/>,
    /// and no cache when there is no data folder. Set <see cref="NoDiscoveryCache"/> to turn it off.
    /// </summary>
    public string? DiscoveryCachePath { get; init; }

    /// <summary>True probes every candidate on every start (no verdict cache).</summary>
    public bool NoDiscoveryCache { get; init; }

    /// <summary>The verdict cache file in use, or null when there is none.</summary>
    public string? DiscoveryCacheFile => NoDiscoveryCache ? null
        : DiscoveryCachePath is { Length: > 0 } p ? Path.GetFullPath(p)
        : string.IsNullOrWhiteSpace(DataDir) ? null : Path.Combine(Path.GetFullPath(DataDir), "python-discovery.json");

    /// <summary>The torch thread count actually used.</summary>
    public int EffectiveTorchThreads => TorchThreads is > 0 ? TorchThreads.Value : Environment.ProcessorCount;
}
