using System.Diagnostics;

namespace LoraBridge.Python.Tests;

/// <summary>Builds real interpreter candidates (venvs, a static-build look-alike) in temp folders.</summary>
internal static class TestPython
{
    /// <summary>The interpreter the tests use (<see cref="LoraBridge.TestSupport.TestPython.Executable"/>).</summary>
    public static string System => LoraBridge.TestSupport.TestPython.Executable;

    public static string TempDir(string tag)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"lorabridge-{tag}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>`python3 -m venv --without-pip` (pip is not needed and needs no network); returns bin/python.</summary>
    public static string CreateVenv(string dir, bool systemSitePackages)
    {
        var args = new List<string> { "-m", "venv", "--without-pip" };
        if (systemSitePackages) args.Add("--system-site-packages");
        args.Add(dir);
        var (code, output) = Run(System, args);
        Assert.True(code == 0, $"creating a venv in {dir} failed ({code}): {output}");
        var python = Path.Combine(dir, "bin", "python");
        Assert.True(File.Exists(python), $"{python} missing after venv creation");
        return python;
    }

    /// <summary>
    /// A `python3` that is the real system interpreter but whose sysconfig describes a static build
    /// (Py_ENABLE_SHARED=0, libpython3.x.a), as pyenv or python.org builds without --enable-shared do.
    /// </summary>
    public static string CreateStaticLookalike(string dir)
    {
        File.WriteAllText(Path.Combine(dir, "_sysconfigdata_lorabridge_static.py"), """
import importlib, sys
_real = importlib.import_module(f"_sysconfigdata_{sys.abiflags}_{sys.platform}_{getattr(sys.implementation, '_multiarch', '')}")
_lib = f"libpython{sys.version_info[0]}.{sys.version_info[1]}.a"
build_time_vars = dict(_real.build_time_vars, Py_ENABLE_SHARED=0, LDLIBRARY=_lib, INSTSONAME=_lib)
""");
        var exe = Path.Combine(dir, "python3");
        File.WriteAllText(exe, $"""
#!/bin/sh
export _PYTHON_SYSCONFIGDATA_NAME=_sysconfigdata_lorabridge_static
export PYTHONPATH="{dir}"
exec {System} "$@"

""");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(exe, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return exe;
    }

    public static (int Code, string Output) Run(string exe, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout + stderr.Result);
    }
}
