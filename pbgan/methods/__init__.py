"""The lifelong methods, one file each: a layer family (how a task's weights are made and stored)
and, where the method trains differently, a :class:`~pbgan.lifelong.plugin.TrainingPlugin`.

Which methods exist is what ``conf/method/`` holds: each YAML names its family and plugin with
``_target_`` nodes, so adding a method touches no code outside its own file.
"""
