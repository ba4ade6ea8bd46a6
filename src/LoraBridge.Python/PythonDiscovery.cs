using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace LoraBridge.Python;

/// <summary>Where a candidate interpreter came from, in the order they are tried.</summary>
public enum PythonSource
{
    /// <summary><c>--python</c> or <c>LoraBridge:Python:Executable</c>.</summary>
    Explicit,
    /// <summary><c>&lt;WebUiDir&gt;/venv/bin/python</c> of an A1111 install.</summary>
    WebUiVenv,
    /// <summary><c>&lt;DataDir&gt;/venv/bin/python</c>, created by <c>lorabridge setup</c>.</summary>
    DataDirVenv,
    /// <summary><c>python3</c> found on PATH.</summary>
    Path,
    /// <summary>The system interpreter, <c>/usr/bin/python3</c>.</summary>
    System,
}

/// <summary>What a candidate interpreter said about itself when asked in a subprocess.</summary>
/// <param name="Executable"><c>sys.executable</c>; the embedded runtime uses it as ProgramName so venvs resolve.</param>
/// <param name="Version">Interpreter version (major.minor.micro).</param>
/// <param name="Prefix"><c>sys.prefix</c> (the venv for a venv).</param>
/// <param name="BasePrefix"><c>sys.base_prefix</c> (the installation a venv was made from).</param>
/// <param name="SitePackages"><c>site.getsitepackages()</c>.</param>
/// <param name="SharedEnabled">sysconfig <c>Py_ENABLE_SHARED</c>.</param>
/// <param name="LibPython">First existing shared libpython, or null.</param>
/// <param name="TorchVersion">torch's version when it imports, else null.</param>
/// <param name="TorchError">Why torch did not import (last line of the error), else null.</param>
/// <param name="NumpyVersion">numpy's version when it imports, else null.</param>
/// <param name="PillowVersion">Pillow's version when it imports, else null.</param>
public sealed record PythonProbe(
    string Executable, Version Version, string Prefix, string BasePrefix, IReadOnlyList<string> SitePackages,
    bool SharedEnabled, string? LibPython, string? TorchVersion, string? TorchError, string? NumpyVersion, string? PillowVersion)
{
    /// <summary>True when the interpreter runs inside a virtual environment.</summary>
    public bool IsVenv => Prefix != BasePrefix;

    /// <summary>torch's package folder when it imports (its modification time is part of the cached verdict), else null.</summary>
    public string? TorchDir { get; init; }
}

/// <summary>Outcome for one candidate.</summary>
public enum CandidateStatus
{
    /// <summary>Usable and chosen.</summary>
    Chosen,
    /// <summary>Tried and rejected; see <see cref="PythonCandidate.Reason"/>.</summary>
    Skipped,
    /// <summary>Not tried because an earlier candidate was chosen or an explicit executable was configured.</summary>
    NotTried,
}

/// <summary>One interpreter discovery looked at.</summary>
/// <param name="Source">Where the candidate came from.</param>
/// <param name="Path">The executable path as configured or found.</param>
/// <param name="Status">Chosen, skipped or not tried.</param>
/// <param name="Reason">Why it was skipped or not tried; null when chosen.</param>
/// <param name="Probe">What the interpreter reported, when it could be run.</param>
public sealed record PythonCandidate(PythonSource Source, string Path, CandidateStatus Status, string? Reason, PythonProbe? Probe)
{
    /// <summary>True when the verdict came from the discovery cache instead of a probe run now.</summary>
    public bool FromCache { get; init; }
}

/// <summary>Every candidate in order, with the winner if any.</summary>
/// <param name="Candidates">Candidates in the order they were considered.</param>
public sealed record DiscoveryReport(IReadOnlyList<PythonCandidate> Candidates)
{
    /// <summary>The chosen candidate, or null when no interpreter is usable.</summary>
    public PythonCandidate? Winner => Candidates.FirstOrDefault(c => c.Status == CandidateStatus.Chosen);

    /// <summary>True when at least one verdict came from the discovery cache (no probe was run for it).</summary>
    public bool UsedCache => Candidates.Any(c => c.FromCache);

    /// <summary>Why cached verdicts were not used, per candidate path (empty when the cache was off or all were current).</summary>
    public IReadOnlyDictionary<string, string> CacheMisses { get; init; } = new Dictionary<string, string>();

    /// <summary>One line per candidate, for logs and error messages.</summary>
    public string Describe()
    {
        var sb = new StringBuilder();
        foreach (var c in Candidates)
        {
            sb.Append("  ").Append(c.Status == CandidateStatus.Chosen ? "[chosen] " : c.Status == CandidateStatus.Skipped ? "[skipped] " : "[not tried] ")
              .Append(SourceLabel(c.Source)).Append(": ").Append(c.Path);
            if (c.Probe is { } p) sb.Append(" (Python ").Append(p.Version).Append(')');
            if (c.Reason is not null) sb.Append(" — ").Append(c.Reason);
            if (c.FromCache) sb.Append(" [cached verdict]");
            sb.AppendLine();
        }
        return sb.ToString();
    }

    /// <summary>Human wording of a source, as the report prints it.</summary>
    public static string SourceLabel(PythonSource source) => source switch
    {
        PythonSource.Explicit => "--python / LoraBridge:Python:Executable",
        PythonSource.WebUiVenv => "A1111 venv (--webui-dir)",
        PythonSource.DataDirVenv => "lorabridge setup venv",
        PythonSource.Path => "python3 on PATH",
        _ => "system python",
    };
}

/// <summary>
/// Finds a CPython 3.10–3.13 with a shared libpython and an importable torch by asking each candidate
/// (in a subprocess) about itself. Order: explicit executable; A1111 <c>venv/bin/python</c>;
/// the data-dir venv made by <c>lorabridge setup</c>; <c>python3</c> on PATH; <c>/usr/bin/python3</c>.
/// </summary>
public sealed class PythonDiscovery(PythonRuntimeOptions options)
{
    /// <summary>Lowest supported version.</summary>
    public static readonly Version MinVersion = new(3, 10);
    /// <summary>Highest supported minor version.</summary>
    public static readonly Version MaxVersion = new(3, 13);

    // Runs inside the candidate. Library search follows the measured notes: INSTSONAME first (Debian ships
    // only the versioned .so in the runtime package), across LIBDIR, LIBDIR/MULTIARCH, LIBPL, base_prefix/lib.
    /// <summary>The probe script's text (its hash keys the discovery cache).</summary>
    internal static string ProbeScriptText => ProbeScript;

    private const string ProbeScript = """
import json, os, site, sys, sysconfig
v = sysconfig.get_config_var
names = [n for n in (v("INSTSONAME"), v("LDLIBRARY")) if n and (".so" in n or n.endswith(".dylib"))]
libdir = v("LIBDIR") or ""
dirs = [libdir, os.path.join(libdir, v("MULTIARCH") or ""), v("LIBPL") or "", os.path.join(sys.base_prefix, "lib")]
lib = next((os.path.join(d, n) for n in names for d in dirs if d and os.path.isfile(os.path.join(d, n))), None)
r = {"executable": sys.executable, "version": list(sys.version_info[:3]), "prefix": sys.prefix,
     "base_prefix": sys.base_prefix, "site_packages": list(getattr(site, "getsitepackages", lambda: [])()),
     "shared": bool(v("Py_ENABLE_SHARED")), "libpython": lib}
def version_of(name):
    try:
        return str(getattr(__import__(name), "__version__", "unknown")), None
    except BaseException as e:
        return None, (type(e).__name__ + ": " + str(e)).strip().splitlines()[-1]
r["torch"], r["torch_error"] = version_of("torch")
r["torch_dir"] = os.path.dirname(sys.modules["torch"].__file__) if r["torch"] and getattr(sys.modules.get("torch"), "__file__", None) else None
r["numpy"], _ = version_of("numpy")
r["pillow"], _ = version_of("PIL")
print("\n@@LORABRIDGE_PROBE@@" + json.dumps(r))
""";

    private const string Marker = "@@LORABRIDGE_PROBE@@";
    private const string NotOnPath = "\0not-on-path";

    private Task<DiscoveryReport>? _report;
    private DiscoveryCache? _cache;

    /// <summary>The verdict cache in the data folder (<see cref="PythonRuntimeOptions.DiscoveryCacheFile"/>), or null when there is none.</summary>
    public DiscoveryCache? Cache => _cache ??= options.DiscoveryCacheFile is { } f ? new DiscoveryCache(f) : null;

    /// <summary>
    /// The report of the first <see cref="DiscoverAsync(bool, CancellationToken)"/> made through this instance, using cached verdicts for
    /// unchanged candidates (a probe costs 0.4–2.5 s a candidate).
    /// </summary>
    public Task<DiscoveryReport> GetReportAsync(CancellationToken ct = default) => _report ??= DiscoverAsync(useCache: true, ct);

    /// <summary>
    /// Drops a cached winner that failed at boot, probes every candidate afresh (rewriting the cache) and makes
    /// that the report <see cref="GetReportAsync"/> returns from now on.
    /// </summary>
    public Task<DiscoveryReport> RediscoverAsync(string failedPath, CancellationToken ct = default)
    {
        Cache?.Remove(failedPath);
        return _report = DiscoverAsync(useCache: false, ct);
    }

    /// <summary>
    /// Probes every candidate afresh (as <c>doctor</c> does), rewrites the cache with the verdicts, and makes this the
    /// report <see cref="GetReportAsync"/> returns, so a boot that follows uses exactly what was just probed.
    /// <see cref="DiscoveryReport.CacheMisses"/> then tells which stored verdicts were out of date.
    /// </summary>
    public Task<DiscoveryReport> ProbeAfreshAsync(CancellationToken ct = default) => _report = DiscoverAsync(useCache: false, ct);

    /// <summary>Tries the candidates in order and stops at the first usable one, probing each (no cache).</summary>
    public Task<DiscoveryReport> DiscoverAsync(CancellationToken ct = default) => DiscoverAsync(useCache: false, ct);

    /// <summary>
    /// Tries the candidates in order and stops at the first usable one. With <paramref name="useCache"/>, a candidate
    /// whose deciding files are unchanged gets its stored verdict instead of a probe; every probe run is stored.
    /// </summary>
    public async Task<DiscoveryReport> DiscoverAsync(bool useCache, CancellationToken ct = default)
    {
        var list = new List<PythonCandidate>();
        var misses = new Dictionary<string, string>(StringComparer.Ordinal);
        var candidates = EnumerateCandidates().ToList();
        bool found = false, explicitGiven = !string.IsNullOrWhiteSpace(options.Executable);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (source, path) in candidates)
        {
            if (explicitGiven && source != PythonSource.Explicit)
            {
                // An explicit choice is authoritative: falling back silently would run a different Python than asked for.
                list.Add(new(source, path, CandidateStatus.NotTried, "an explicit executable is configured", null));
                continue;
            }
            if (found)
            {
                list.Add(new(source, path, CandidateStatus.NotTried, "an earlier candidate was chosen", null));
                continue;
            }
            if (source == PythonSource.Path && path == NotOnPath)
            {
                list.Add(new(source, "python3", CandidateStatus.Skipped, "python3 is not on PATH", null));
                continue;
            }
            if (!seen.Add(path))
            {
                list.Add(new(source, path, CandidateStatus.Skipped, "same path as an earlier candidate", null));
                continue;
            }
            PythonCandidate? c = null;
            if (Cache is { } cache && File.Exists(path))
            {
                if (useCache)
                {
                    c = cache.TryGet(source, path, out var stale);
                    if (c is null && stale is not null) misses[path] = stale;
                }
                else if (cache.TryGet(source, path, out var stale) is null && stale is not null)
                {
                    misses[path] = stale; // doctor says whether the stored verdicts were still current
                }
            }
            if (c is null)
            {
                c = await EvaluateAsync(source, path, ct).ConfigureAwait(false);
                if (c.Probe is not null) Cache?.Put(c);
            }
            found = c.Status == CandidateStatus.Chosen;
            list.Add(c);
        }
        Cache?.Save();
        return new DiscoveryReport(list) { CacheMisses = misses };
    }

    private IEnumerable<(PythonSource, string)> EnumerateCandidates()
    {
        if (!string.IsNullOrWhiteSpace(options.Executable))
            yield return (PythonSource.Explicit, Path.GetFullPath(ExpandHome(options.Executable)));
        if (!string.IsNullOrWhiteSpace(options.WebUiDir))
            yield return (PythonSource.WebUiVenv, Path.Combine(Path.GetFullPath(ExpandHome(options.WebUiDir)), "venv", "bin", "python"));
        if (!string.IsNullOrWhiteSpace(options.DataDir))
        {
            var venv = Path.Combine(Path.GetFullPath(ExpandHome(options.DataDir)), "venv", "bin", "python");
            if (File.Exists(venv)) yield return (PythonSource.DataDirVenv, venv);
        }
        var onPath = FindOnPath("python3", options.SearchPath ?? Environment.GetEnvironmentVariable("PATH") ?? "");
        yield return (PythonSource.Path, onPath ?? NotOnPath);
        yield return (PythonSource.System, options.SystemPython);
    }

    /// <summary>Probes one interpreter and decides whether it is usable.</summary>
    public async Task<PythonCandidate> EvaluateAsync(PythonSource source, string path, CancellationToken ct = default)
    {
        if (!File.Exists(path))
            return new(source, path, CandidateStatus.Skipped, $"not found: {path}", null);
        PythonProbe probe;
        try
        {
            probe = await ProbeAsync(path, options.ProbeTimeout, ct).ConfigureAwait(false);
        }
        catch (PythonProbeException ex)
        {
            return new(source, path, CandidateStatus.Skipped, ex.Message, null);
        }
        var reason = Reject(probe);
        return new(source, path, reason is null ? CandidateStatus.Chosen : CandidateStatus.Skipped, reason, probe);
    }

    /// <summary>Why a probed interpreter cannot be embedded, or null when it can.</summary>
    public static string? Reject(PythonProbe p)
    {
        var mm = new Version(p.Version.Major, p.Version.Minor);
        if (mm < MinVersion || mm > MaxVersion)
            return $"Python {p.Version} is outside the supported {MinVersion}–{MaxVersion}";
        if (!p.SharedEnabled)
            return "no shared libpython: this Python was built without --enable-shared (Py_ENABLE_SHARED=0)";
        if (p.LibPython is null)
            return "no shared libpython found (looked in LIBDIR, LIBDIR/MULTIARCH, LIBPL, base_prefix/lib); install libpython" + $"{p.Version.Major}.{p.Version.Minor}";
        if (p.TorchVersion is null)
            return $"torch is not importable: {p.TorchError ?? "unknown error"}";
        return null;
    }

    /// <summary>Runs the probe script under <paramref name="executable"/>.</summary>
    /// <exception cref="PythonProbeException">The interpreter could not be run or gave no usable answer.</exception>
    public static async Task<PythonProbe> ProbeAsync(string executable, TimeSpan timeout, CancellationToken ct = default)
    {
        var psi = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            // `python -c` puts the working directory first on sys.path: a torch.py there would run during the probe.
            // "/" is not writable by others; PYTHONSAFEPATH (3.11+) drops that entry altogether.
            WorkingDirectory = "/",
        };
        psi.Environment["PYTHONSAFEPATH"] = "1";
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(ProbeScript);
        Process proc;
        try
        {
            proc = Process.Start(psi) ?? throw new PythonProbeException($"could not start {executable}");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new PythonProbeException($"could not run {executable}: {ex.Message}");
        }
        using (proc)
        {
            var stdout = proc.StandardOutput.ReadToEndAsync(ct);
            var stderr = proc.StandardError.ReadToEndAsync(ct);
            using var timeoutCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeoutCts.CancelAfter(timeout);
            try
            {
                await proc.WaitForExitAsync(timeoutCts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                try { proc.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                ct.ThrowIfCancellationRequested();
                throw new PythonProbeException($"{executable} did not answer within {timeout.TotalSeconds:0} s");
            }
            var output = await stdout.ConfigureAwait(false);
            var errors = await stderr.ConfigureAwait(false);
            int at = output.LastIndexOf(Marker, StringComparison.Ordinal);
            if (proc.ExitCode != 0 || at < 0)
            {
                var last = errors.Trim().Split('\n').LastOrDefault()?.Trim();
                throw new PythonProbeException($"{executable} exited with code {proc.ExitCode} without describing itself" +
                                               (string.IsNullOrEmpty(last) ? "" : $": {last}"));
            }
            return Parse(output[(at + Marker.Length)..].Trim(), executable);
        }
    }

    private static PythonProbe Parse(string json, string executable)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            var r = doc.RootElement;
            var v = r.GetProperty("version").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            static string? Str(JsonElement e, string name) =>
                e.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
            return new PythonProbe(
                Str(r, "executable") is { Length: > 0 } exe ? exe : executable,
                new Version(v[0], v[1], v[2]),
                Str(r, "prefix") ?? "", Str(r, "base_prefix") ?? "",
                r.GetProperty("site_packages").EnumerateArray().Select(e => e.GetString() ?? "").ToArray(),
                r.GetProperty("shared").GetBoolean(), Str(r, "libpython"),
                Str(r, "torch"), Str(r, "torch_error"), Str(r, "numpy"), Str(r, "pillow"))
            { TorchDir = Str(r, "torch_dir") };
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or IndexOutOfRangeException)
        {
            throw new PythonProbeException($"{executable} gave an unreadable description of itself: {ex.Message}");
        }
    }

    /// <summary>First executable file named <paramref name="name"/> in a PATH-style list, or null.</summary>
    public static string? FindOnPath(string name, string searchPath)
    {
        foreach (var dir in searchPath.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var full = Path.Combine(dir, name);
            if (File.Exists(full) && (OperatingSystem.IsWindows() ||
                (File.GetUnixFileMode(full) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0))
                return Path.GetFullPath(full);
        }
        return null;
    }

    private static string ExpandHome(string path) =>
        path == "~" || path.StartsWith("~/", StringComparison.Ordinal)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path.TrimStart('~', '/'))
            : path;
}

/// <summary>A candidate interpreter could not be run or described itself unreadably.</summary>
public sealed class PythonProbeException(string message) : Exception(message);
