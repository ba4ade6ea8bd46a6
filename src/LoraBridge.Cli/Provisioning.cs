using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using LoraBridge.Python;

namespace LoraBridge.Cli;

/// <summary>
/// <c>requirements.lock</c>: pinned pip requirements for pip users, and (as <c># apt: …</c> comment lines)
/// the Debian/Ubuntu packages that provide the same.
/// </summary>
/// <param name="Path">The file read.</param>
/// <param name="PipRequirements">Requirement lines, e.g. <c>torch==2.5.1</c>.</param>
/// <param name="AptPackages">Debian package names.</param>
public sealed record RequirementsLock(string Path, IReadOnlyList<string> PipRequirements, IReadOnlyList<string> AptPackages)
{
    /// <summary>The copy shipped beside the executable.</summary>
    public static string DefaultPath => System.IO.Path.Combine(AppContext.BaseDirectory, "requirements.lock");

    /// <summary>Reads and checks the file.</summary>
    /// <exception cref="InvalidDataException">The file is missing or a line is malformed (names the line).</exception>
    public static RequirementsLock Load(string path)
    {
        if (!File.Exists(path)) throw new InvalidDataException($"{path} not found (it ships beside the lorabridge executable)");
        var pip = new List<string>();
        var apt = new List<string>();
        int n = 0;
        foreach (var raw in File.ReadLines(path))
        {
            n++;
            var line = raw.Trim();
            if (line.StartsWith("# apt:", StringComparison.Ordinal))
                apt.AddRange(line["# apt:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries));
            else if (line.Length == 0 || line.StartsWith('#') || line.StartsWith("--", StringComparison.Ordinal))
                continue;
            else if (Regex.IsMatch(line, @"^[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+(\s*;.*)?$"))
                pip.Add(line);
            else
                throw new InvalidDataException($"{path}:{n}: expected a pinned requirement 'name==version', got '{line}'");
        }
        if (pip.Count == 0) throw new InvalidDataException($"{path}: no pinned requirements");
        return new RequirementsLock(path, pip, apt);
    }

    /// <summary>The apt list with <c>libpython3.x</c> adjusted to the given interpreter version.</summary>
    public IReadOnlyList<string> AptPackagesFor(Version? python) => python is null
        ? AptPackages
        : AptPackages.Select(p => Regex.IsMatch(p, @"^libpython3\.\d+$") ? $"libpython{python.Major}.{python.Minor}" : p).ToArray();
}

/// <summary>Facts about the host system that decide how things get installed.</summary>
public static class SystemFacts
{
    [DllImport("libc", EntryPoint = "geteuid")]
    private static extern uint GetEuid();

    /// <summary>True when running as root (apt may be used directly).</summary>
    public static bool IsRoot => !OperatingSystem.IsWindows() && GetEuid() == 0;

    /// <summary><c>sudo </c> unless root.</summary>
    public static string Sudo => IsRoot ? "" : "sudo ";

    /// <summary>True on Debian, Ubuntu and their derivatives with apt-get available.</summary>
    public static bool IsDebianLike
    {
        get
        {
            if (!File.Exists("/etc/os-release") || PythonDiscovery.FindOnPath("apt-get", Environment.GetEnvironmentVariable("PATH") ?? "") is null)
                return false;
            var ids = File.ReadLines("/etc/os-release")
                .Where(l => l.StartsWith("ID=", StringComparison.Ordinal) || l.StartsWith("ID_LIKE=", StringComparison.Ordinal))
                .SelectMany(l => l[(l.IndexOf('=') + 1)..].Trim('"').Split(' '));
            return ids.Any(id => id is "debian" or "ubuntu");
        }
    }

    /// <summary>The packages of <paramref name="packages"/> that dpkg does not report as installed.</summary>
    public static IReadOnlyList<string> MissingDebianPackages(IEnumerable<string> packages) =>
        packages.Where(p =>
        {
            var (code, output) = Capture("dpkg-query", ["-W", "-f=${Status}", p]);
            return code != 0 || !output.Contains("install ok installed", StringComparison.Ordinal);
        }).ToArray();

    /// <summary>Runs a program with its output captured.</summary>
    public static (int Code, string Output) Capture(string exe, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEndAsync();
            var output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, output + err.Result);
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            return (-1, ex.Message);
        }
    }

    /// <summary>Runs a program with the console attached (the user sees apt's or pip's progress).</summary>
    public static async Task<int> RunAttachedAsync(string exe, IReadOnlyList<string> args, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(exe) { UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (exe == "apt-get") psi.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {exe}");
        await p.WaitForExitAsync(ct);
        return p.ExitCode;
    }

    /// <summary>True when the pip index (<c>PIP_INDEX_URL</c> or PyPI) answers within a few seconds.</summary>
    public static async Task<(bool Answers, string Url)> PackageIndexAnswersAsync(CancellationToken ct)
    {
        var url = Environment.GetEnvironmentVariable("PIP_INDEX_URL") is { Length: > 0 } u ? u : "https://pypi.org/simple/";
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            using var response = await http.GetAsync(url.TrimEnd('/') + "/pip/", HttpCompletionOption.ResponseHeadersRead, ct);
            return (response.IsSuccessStatusCode, url);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or UriFormatException or InvalidOperationException)
        {
            ct.ThrowIfCancellationRequested();
            return (false, url);
        }
    }
}
