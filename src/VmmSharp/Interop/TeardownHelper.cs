using System.Runtime.InteropServices;

namespace VmmSharp.Interop;

/// <summary>
/// Hands the last reference to a file (a KVM VM) to a helper process that keeps it until this process has
/// exited, so that the kernel's release of the file runs in the helper and this process's exit does not wait for
/// it. The helper is <c>cat</c> with standard input on a pipe only this process writes to (close-on-exec here):
/// it sees end-of-file when this process exits, then exits itself, and its exit closes the file.
/// </summary>
internal static unsafe partial class TeardownHelper
{
    private const string Lib = "libc.so.6";
    private const int O_WRONLY = 0x1;
    private static readonly string[] CatPaths = ["/usr/bin/cat", "/bin/cat"];

    /// <summary>
    /// Starts the helper holding <paramref name="file"/> (as fd 3 or the next free number) (stdout and stderr /dev/null, so whoever reads
    /// this process's output sees it end when this process ends; no other descriptor). True once the helper holds the file; false, with
    /// nothing changed, when no helper could be started.
    /// </summary>
    public static bool HandOff(SafeHandle file)
    {
        string? cat = Array.Find(CatPaths, File.Exists);
        if (cat is null)
        {
            return false;
        }
        int* pipe = stackalloc int[2];
        if (Libc.Pipe2(pipe, Libc.O_CLOEXEC) != 0)
        {
            return false;
        }
        byte* actions = stackalloc byte[256]; // posix_spawn_file_actions_t is 80 bytes on glibc
        bool added = false;
        int rc = -1;
        nint arg0 = Marshal.StringToCoTaskMemUTF8("cat");
        try
        {
            file.DangerousAddRef(ref added);
            int fd = (int)file.DangerousGetHandle();
            // dup2 onto another number clears close-on-exec; the order keeps either descriptor from overwriting
            // the other, whatever numbers they have (fd 0 included).
            int held = 3;
            while (held == fd || held == pipe[0])
            {
                held++;
            }
            _ = FileActionsInit(actions);
            _ = FileActionsAddDup2(actions, fd, held);
            _ = FileActionsAddDup2(actions, pipe[0], 0);
            _ = FileActionsAddOpen(actions, 1, "/dev/null", O_WRONLY, 0);
            _ = FileActionsAddOpen(actions, 2, "/dev/null", O_WRONLY, 0);
            // Descriptors this process inherited without close-on-exec (a harness's status pipe, say) must not
            // stay open in the helper: whoever waits on them would wait for the teardown after all.
            _ = FileActionsAddCloseFrom(actions, held + 1);
            nint* argv = stackalloc nint[2] { arg0, 0 };
            nint* envp = stackalloc nint[1] { 0 };
            int pid;
            rc = PosixSpawn(&pid, cat, actions, null, argv, envp);
        }
        catch (EntryPointNotFoundException)
        {
            // A libc without posix_spawn_file_actions_addclosefrom_np (glibc before 2.34): no helper.
        }
        finally
        {
            _ = FileActionsDestroy(actions);
            Marshal.FreeCoTaskMem(arg0);
            if (added)
            {
                file.DangerousRelease();
            }
            _ = Libc.Close(pipe[0]);
            if (rc != 0)
            {
                _ = Libc.Close(pipe[1]);
            }
            // Otherwise the write end stays open, unused, until this process exits: its end-of-file ends the helper.
        }
        return rc == 0;
    }

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_init")]
    private static partial int FileActionsInit(byte* actions);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_destroy")]
    private static partial int FileActionsDestroy(byte* actions);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_adddup2")]
    private static partial int FileActionsAddDup2(byte* actions, int fd, int newFd);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_addclosefrom_np")]
    private static partial int FileActionsAddCloseFrom(byte* actions, int from);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_addopen", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int FileActionsAddOpen(byte* actions, int fd, string path, int flags, uint mode);

    [LibraryImport(Lib, EntryPoint = "posix_spawn", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int PosixSpawn(int* pid, string path, byte* actions, void* attributes, nint* argv, nint* envp);
}
