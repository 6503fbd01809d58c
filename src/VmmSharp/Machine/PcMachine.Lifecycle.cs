using VmmSharp.Vm;

namespace VmmSharp.Machine;

/// <content>
/// The lifecycle: <see cref="VmState.Configured"/> → <see cref="VmState.Running"/> ⇄ <see cref="VmState.Paused"/> →
/// <see cref="VmState.Stopped"/>, driven from any thread. A pause parks the vCPUs first (the VM's recall whose handler
/// blocks), then quiesces the device threads; a resume wakes the devices, then releases the vCPUs.
/// </content>
public sealed partial class PcMachine
{
    private readonly Lock _lifecycleLock = new();
    private Task<MachineResult>? _background;

    /// <summary>Where the machine is in its life. Any thread.</summary>
    public VmState State => _vm.State;

    /// <summary>
    /// The result of the run <see cref="Resume"/> started for a restored machine that had not run yet; null until then.
    /// </summary>
    public Task<MachineResult>? Completion => Volatile.Read(ref _background);

    /// <summary>
    /// Pauses the running guest: returns once every vCPU is parked outside <c>KVM_RUN</c> with its pending I/O completed
    /// and the device threads are quiet. Any thread, typically while another one is in <see cref="Run"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The machine is not running (paused already, not started, stopped).</exception>
    /// <exception cref="VmmException">A vCPU did not park in time; the machine runs on.</exception>
    public void Pause()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_lifecycleLock)
        {
            _vm.Pause();
            PauseDevices();
        }
    }

    /// <summary>
    /// Lets a paused guest run on. A machine restored from a snapshot that has not run yet starts running in the
    /// background (its result in <see cref="Completion"/>); <see cref="Run"/> does the same on the calling thread.
    /// Any thread.
    /// </summary>
    /// <exception cref="InvalidOperationException">The machine is not paused.</exception>
    public void Resume()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_lifecycleLock)
        {
            if (_vm.State != VmState.Paused)
            {
                throw new InvalidOperationException($"cannot resume the machine: it is {_vm.State.ToString().ToLowerInvariant()}, not paused");
            }
            if (Volatile.Read(ref _runs) == 0)
            {
                Volatile.Write(ref _background, Task.Factory.StartNew(Run, CancellationToken.None,
                    TaskCreationOptions.LongRunning, TaskScheduler.Default));
                return;
            }
            ResumeDevices();
            _vm.Resume();
        }
    }
}
