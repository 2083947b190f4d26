"""
Creating nodes (L{CreateOperations}, Curator's C{CreateBuilder}): with missing parents,
as set-data when the node exists, idempotent, and protected (C{_c_<uuid>-name}), the
one operation whose retry must find out whether a lost attempt happened: after a
connection loss the retry looks for its own protected node before creating again,
and a create that fails for good has its node, if any, deleted in the background.

Separate from the other operations because of that recovery (and its cleanup), which
is most of this module.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

from twisted.internet import defer
from twisted.logger import Logger

from curatorish import errors
from curatorish.client_view import ClientView
from curatorish.connection.operations import check_data
from curatorish.deletes import guaranteed_delete
from curatorish.logbridge import FRAMEWORK_NAMESPACE
from curatorish.node_names import make_path, protected_name, split_path
from zkreg.proto.consts import CreateMode
from zkreg.proto.records import Stat

_log = Logger(namespace=FRAMEWORK_NAMESPACE)


class Created(NamedTuple):
    """
    What L{CuratorFramework.create<curatorish.framework.CuratorFramework.create>}
    answers: the created path (with the sequence number and protected prefix, without
    the namespace) and the node's stat.
    """

    path: str
    stat: Stat | None


class CreateOperations(ClientView):
    """
    The create operation of L{curatorish.framework.CuratorFramework}.
    """

    def create(
        self,
        path: str,
        data: bytes | None = None,
        *,
        mode: CreateMode = CreateMode.PERSISTENT,
        acl: Sequence[Any] | None = None,
        ttl: int | None = None,
        parents: bool = False,
        parents_as_containers: bool = False,
        protected: bool = False,
        or_set_data: bool = False,
        set_data_version: int = -1,
        idempotent: bool = False,
        compress: bool = False,
    ) -> defer.Deferred[Created]:
        """
        Create a node (Curator's C{create()}).

        @param data: the node's data; L{None} means the client's default data.
        @param mode: a L{CreateMode} (CONTAINER and the TTL modes included).
        @param acl: the node's ACL; default from the ACL provider.
        @param ttl: milliseconds, for the TTL modes.
        @param parents: create missing parents (C{creatingParentsIfNeeded}).
        @param parents_as_containers: ... as containers (C{creatingParentContainersIfNeeded}).
        @param protected: name the node C{_c_<uuid>-<name>}, so that after a connection
            loss the client can find out whether its create happened
            (C{withProtection}); always use it for sequential and ephemeral nodes
            whose creation you must not lose or duplicate.
        @param or_set_data: when the node exists, set its data instead (C{orSetData}).
        @param set_data_version: the version for that set-data.
        @param idempotent: succeed if the node exists with our data at version 0
            (a retry of a create that did happen).
        @param compress: gzip the data.
        @return: Deferred firing with L{Created}C{(path, stat)}.
        @raise TypeError: (at once) when C{data} is not bytes.
        """
        check_data(data, path)
        return self._deferred(
            self._create(
                path,
                data,
                CreateMode(mode),
                acl,
                ttl,
                parents or parents_as_containers,
                parents_as_containers,
                protected,
                or_set_data,
                set_data_version,
                idempotent,
                compress,
            )
        )

    async def _create(
        self,
        path: str,
        data: bytes | None,
        mode: CreateMode,
        acl: Sequence[Any] | None,
        ttl: int | None,
        parents: bool,
        parents_as_containers: bool,
        protected: bool,
        or_set_data: bool,
        set_data_version: int,
        idempotent: bool,
        compress: bool,
    ) -> Created:
        core = self._core
        zk = core.connection
        full = self.fix_path(path, mode.is_sequential)
        payload = core.payload(data, compress)
        protected_id = str(uuid.uuid4()) if protected else None
        if protected_id is not None:
            parent, name = split_path(full)
            full = make_path(parent, protected_name(name, protected_id))
        node_acl = core.acl_for(full, acl)
        first_time = True
        session_of_create = 0

        async def attempt() -> Created:
            nonlocal first_time, session_of_create
            local_first = first_time
            first_time = False
            if protected_id is not None and session_of_create == 0 and mode.is_ephemeral:
                session_of_create = zk.session_id
            created: tuple[str, Stat | None] | None = None
            if not local_first and protected_id is not None:
                created = await self._find_protected_node(
                    full, protected_id, mode, session_of_create
                )
                if created is not None and mode.is_ephemeral:
                    session_of_create = zk.session_id
            if created is None:
                try:
                    try:
                        created = await zk.create(full, payload, node_acl, mode, ttl)
                    except errors.NoNodeError:
                        if not parents:
                            raise
                        await self._mkdirs(
                            full, make_last=False, as_containers=parents_as_containers
                        )
                        created = await zk.create(full, payload, node_acl, mode, ttl)
                except errors.NodeExistsError:
                    if or_set_data:
                        stat = await zk.set_data(full, payload, set_data_version)
                        created = (full, stat)
                    elif idempotent:
                        existing, stat = await zk.get_data(full)
                        if stat.version == 0 and existing == payload:
                            created = (full, stat)
                        else:
                            raise
                    else:
                        raise
            if core.debug_fail_after_next_create > 0:
                core.debug_fail_after_next_create -= 1
                raise errors.ConnectionLossError(full, "injected after create, for testing")
            return Created(created[0], created[1])

        try:
            result = await self._run(attempt)
        except Exception as error:
            if protected_id is not None and (
                isinstance(error, errors.ConnectionLossError)
                or not isinstance(error, errors.ZooKeeperError)
            ):
                # We cannot know whether the node was made: find it and delete it.
                parent, _ = split_path(full)
                core.run_in_background(
                    self._find_and_delete_protected(parent, protected_id),
                    f"cleanup of protected create {full}",
                )
            raise
        return Created(self.unfix_path(result.path), result.stat)

    async def _find_protected_node(
        self, full: str, protected_id: str, mode: CreateMode, session_of_create: int
    ) -> tuple[str, Stat | None] | None:
        zk = self._core.connection
        parent, _ = split_path(full)
        prefix = protected_name("", protected_id)

        async def find() -> tuple[str, Stat | None] | None:
            try:
                children = await zk.get_children(parent)
            except errors.NoNodeError:
                return None
            for child in children:
                if child.startswith(prefix):
                    found = make_path(parent, child)
                    if mode.is_ephemeral and session_of_create != zk.session_id:
                        # An ephemeral of an old session will vanish: delete it now and
                        # create again in this session.
                        _log.info("Deleting old session's protected node {path}", path=found)
                        self._core.run_in_background(
                            guaranteed_delete(self._core, found), f"delete of {found}"
                        )
                        return None
                    return found, await zk.exists(found)
            return None

        return await self._core.retry_loop.call(find)

    async def _find_and_delete_protected(self, parent: str, protected_id: str) -> None:
        zk = self._core.connection
        prefix = protected_name("", protected_id)

        async def find_and_delete() -> None:
            try:
                children = await zk.get_children(parent)
            except errors.NoNodeError:
                return
            for child in children:
                if child.startswith(prefix):
                    try:
                        await zk.delete(make_path(parent, child))
                    except errors.NoNodeError:
                        pass

        await self._core.retry_until_done(find_and_delete)


__all__ = ["CreateOperations", "Created"]
